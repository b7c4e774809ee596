#!/usr/bin/perl

# Prices requests (CONTRACT sections 3.2, 3.3 and 3.3a): batch= splits the
# symbols of $symbols and of the appended ?symbols= into requests of at
# most N; $symbol makes one request per symbol, at most concurrency= in
# flight (default 4), and a single record object that lacks a symbol takes
# the one requested; with several requests per refresh a partial failure
# applies what succeeded, keeps the rest, logs one warn line and counts in
# partialRefreshes, and only a refresh whose every request failed counts
# as failed; connections are reused across refreshes; a redirect is not
# followed and fails the refresh without showing a secret; nginx -t
# refuses bad batch=, concurrency= and $symbol uses.

use strict;
use warnings;

use Test::More;
use JSON::PP;

use lib 't/lib';
use StockTest;
use FakeUpstream;

# every wait of the file: none at all when nginx is not running, so that a
# module that refuses the configuration fails each assertion at once

sub waiting {
    my ($t, $code, $secs) = @_;

    return 0 unless $t->master_pid;
    return $t->wait_for($code, $secs // 10);
}


sub counter {
    my ($t, $url, $key) = @_;

    return $t->status($url)->{$key} // 0;
}


# wait until the status counter $key passes $n; its value, or 0

sub passes {
    my ($t, $url, $key, $n, $secs) = @_;

    return waiting($t, sub {
        my $v = counter($t, $url, $key);
        return $v > $n ? $v : 0;
    }, $secs);
}


# the prices requests of one whole refresh, as the zone's upstream saw
# them: those between the ends of two refreshes (the interval after a
# refresh is a quiet gap in which the upstream's count is read)

sub one_refresh {
    my ($t, $up, $url) = @_;

    my $r1 = passes($t, $url, 'refreshes', counter($t, $url, 'refreshes'))
        or return [];
    my $n1 = $up->stats->{prices} // 0;

    passes($t, $url, 'refreshes', $r1) or return [];

    my $st = $up->stats;
    my $d = ($st->{prices} // 0) - $n1;
    my @p = grep { $_->{path} eq '/prices' } @{ $st->{requests} // [] };

    return [] if $d < 1 || $d > @p;

    return [ @p[ @p - $d .. $#p ] ];
}


# whether one refresh's requests asked for each of @want exactly once, and
# for nothing else

sub asked_once {
    my ($reqs, @want) = @_;

    my %n;
    $n{$_}++ for map { @{ $_->{asked} // [] } } @$reqs;

    return join(',', sort keys %n) eq join(',', sort @want)
           && !grep { $_ != 1 } values %n;
}


# the sizes of their symbol lists, largest first: "3,3,1"

sub sizes {
    my ($reqs) = @_;

    return join ',', sort { $b <=> $a }
                     map { scalar @{ $_->{asked} // [] } } @$reqs;
}


sub by_symbol {
    my ($t, $url) = @_;

    return { map { $_->{symbol} => $_ } @{ $t->get_json($url) // [] } };
}


# the prices a symbol= upstream answered with 200 for $sym, oldest first

sub answered {
    my ($up, $sym) = @_;

    return map { $_->{price} }
           grep { $_->{path} eq '/prices' && ($_->{status} // 0) == 200
                  && defined $_->{price}
                  && ($_->{asked} // [])->[0] eq $sym }
           @{ $up->stats->{requests} // [] };
}


# a served record's price is one its symbol's requests answered; with
# $last, the last of them

sub served_as_answered {
    my ($up, $rec, $sym, $last) = @_;

    return 0 unless $rec && defined $rec->{price};

    my @p = answered($up, $sym);
    @p = @p[-1 .. -1] if $last && @p;

    return scalar grep { $_ == $rec->{price} } @p;
}


my $canon = JSON::PP->new->canonical;

# two records the same, both there

sub same {
    my ($x, $y) = @_;

    return $x && $y && $canon->encode($x) eq $canon->encode($y);
}


sub warn_lines {
    my ($t, $from, $zone) = @_;

    return grep { /stockprice zone "\Q$zone\E": 1 of 3 requests failed/ }
           split /\n/, substr($t->read_file('error.log'), $from);
}


###############################################################################

# nginx 1: the new request features, a zone per case

my $t = StockTest->new;

my @A = map { "A$_" } 1 .. 7;
my @B = map { "B$_" } 1 .. 7;
my @S = map { sprintf 'S%02d', $_ } 1 .. 12;

my %up;
my $n = 10;

for my $name (qw(batchp batcha one four tmpl part partb reuse2)) {
    $up{$name} = FakeUpstream->start($t, name => $name,
                                     port => $t->port($n++));
}

# each upstream's control; array answers hold only the symbols it serves

my %control = (
    batchp => { symbols => \@A },
    batcha => { symbols => \@B },
    one    => { delay => 0.3 },
    four   => { delay => 0.3 },
    tmpl   => { single_template => '{"c":{{price}},"t":1704067200}' },
    partb  => { symbols => [qw(P1 P2 P3)] },
    reuse2 => { keepalive => 1 },
);

sub steer {
    my ($name, %more) = @_;

    $up{$name}->control({ auth => 0, %{ $control{$name} // {} }, %more });
}

steer($_) for keys %up;

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 256; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll "http://127.0.0.1:%%PORT_10%%/prices?symbols=$symbols"
                    zone=batchp:64k interval=500ms timeout=2s batch=3
                    symbols=A1,A2,A3,A4,A5,A6,A7;

    stockprice_poll http://127.0.0.1:%%PORT_11%%/prices
                    zone=batcha:64k interval=500ms timeout=2s batch=3
                    symbols=B1,B2,B3,B4,B5,B6,B7;

    stockprice_poll "http://127.0.0.1:%%PORT_12%%/prices?symbol=$symbol"
                    zone=one:64k interval=500ms timeout=2s concurrency=3
                    symbols=S01,S02,S03,S04,S05,S06,S07,S08,S09,S10,S11,S12;

    stockprice_poll "http://127.0.0.1:%%PORT_13%%/prices?symbol=$symbol"
                    zone=four:64k interval=500ms timeout=2s
                    symbols=F1,F2,F3,F4,F5,F6,F7,F8,F9,F10;

    stockprice_poll "http://127.0.0.1:%%PORT_14%%/prices?symbol=$symbol"
                    zone=tmpl:64k interval=300ms timeout=2s symbols=T1,T2
                    price_field=/c time_field=/t:s;

    stockprice_poll "http://127.0.0.1:%%PORT_15%%/prices?symbol=$symbol"
                    zone=part:64k interval=300ms timeout=2s
                    symbols=AAA,BBB,CCC;

    stockprice_poll "http://127.0.0.1:%%PORT_16%%/prices?symbols=$symbols"
                    zone=partb:64k interval=300ms timeout=2s batch=1
                    symbols=P1,P2,P3;

    stockprice_poll "http://127.0.0.1:%%PORT_17%%/prices?symbol=$symbol"
                    zone=reuse2:64k interval=300ms timeout=2s concurrency=2
                    symbols=R1,R2,R3,R4;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /batchp/api/StockPrice { stockprice batchp; }
        location /batcha/api/StockPrice { stockprice batcha; }
        location /one/api/StockPrice { stockprice one; }
        location /tmpl/api/StockPrice { stockprice tmpl; }
        location /part/api/StockPrice { stockprice part; }
        location /partb/api/StockPrice { stockprice partb; }

        location = /batchp { stockprice_status batchp; }
        location = /batcha { stockprice_status batcha; }
        location = /one { stockprice_status one; }
        location = /four { stockprice_status four; }
        location = /tmpl { stockprice_status tmpl; }
        location = /part { stockprice_status part; }
        location = /partb { stockprice_status partb; }
        location = /reuse2 { stockprice_status reuse2; }
    }
}
EOF

my $started = eval { $t->run; 1 };
ok($started, 'nginx starts with batch=, concurrency=, $symbol, $symbols')
    or diag(substr($@ // '', 0, 500));

# 1. batch=3 over 7 symbols: 3 requests a refresh, of 3, 3 and 1 symbols

for my $case ([ 'batchp', '$symbols', \@A ], [ 'batcha', 'appended', \@B ]) {
    my ($zone, $form, $syms) = @$case;
    my $up = $up{$zone};

    for my $k (1, 2) {
        my $reqs = one_refresh($t, $up, "/$zone");

        is(scalar @$reqs, 3, "batch, $form: refresh $k makes 3 requests");
        is(sizes($reqs), '3,3,1', "batch, $form: refresh $k asks 3, 3, 1");
        ok(asked_once($reqs, @$syms),
           "batch, $form: refresh $k asks every symbol once");
        ok(@$reqs && !grep({ $_->{query} !~ /^symbols=[^&]+$/ } @$reqs),
           "batch, $form: one symbols= list per request ("
           . join(' ', map { $_->{query} } @$reqs) . ')');
    }

    is(join(',', sort keys %{ by_symbol($t, "/$zone/api/StockPrice") }),
       join(',', sort @$syms), "batch, $form: all 7 symbols served");
}

# 2. $symbol: a request per symbol, at most concurrency= at once

{
    my $up = $up{one};
    my $reqs = one_refresh($t, $up, '/one');

    is(scalar @$reqs, 12, '$symbol: 12 requests a refresh');
    ok(asked_once($reqs, @S), '$symbol: each symbol asked once a refresh');
    ok(@$reqs && !grep({ $_->{query} !~ /^symbol=S\d\d$/ } @$reqs),
       '$symbol: symbol=X in the URL, nothing appended');

    # between refreshes: every symbol asked as often as the others

    my $st = $up->stats;
    my %by = %{ $st->{by_symbol} // {} };
    my %counts = map { $_ => 1 } values %by;

    ok(keys %by == 12 && keys %counts == 1 && (values %by)[0] >= 2,
       '$symbol: by_symbol counts equal after refreshes ('
       . join(' ', map { "$_=$by{$_}" } sort keys %by) . ')');

    ok(($st->{prices} // 0) >= 12 && ($st->{peak} // 0) <= 3,
       '$symbol, concurrency=3: never more than 3 in flight (peak '
       . ($st->{peak} // 0) . ')');
    is($st->{peak}, 3, '$symbol, concurrency=3: 3 in flight at once');

    my $served = by_symbol($t, '/one/api/StockPrice');

    is(join(',', sort keys %$served), join(',', @S),
       '$symbol: the 12 symbols served');
    is(scalar(grep { served_as_answered($up, $served->{$_}, $_) } @S), 12,
       '$symbol: each served with a price its request answered');

    # concurrency 4 by default

    ok(passes($t, '/four', 'refreshes', 1), '$symbol, default: refreshes');
    $st = $up{four}->stats;
    ok(($st->{prices} // 0) >= 10 && ($st->{peak} // 0) <= 4,
       '$symbol, default concurrency: never more than 4 in flight (peak '
       . ($st->{peak} // 0) . ')');
    is($st->{peak}, 4, '$symbol, default concurrency: 4 in flight at once');

    # a provider's object without a symbol: the one requested

    ok(passes($t, '/tmpl', 'refreshes', 0), '$symbol, no symbol field: '
       . 'a refresh');
    $served = by_symbol($t, '/tmpl/api/StockPrice');

    is(join(',', sort keys %$served), 'T1,T2',
       '$symbol, no symbol field: records take the symbol requested');
    is(scalar(grep { served_as_answered($up{tmpl}, $served->{$_}, $_) }
                   qw(T1 T2)), 2,
       '$symbol, no symbol field: the prices sent (price_field=/c)');
    is(join(',', map { $served->{$_}{valueDateTime} // 'none' } qw(T1 T2)),
       '2024-01-01T00:00:00Z,2024-01-01T00:00:00Z',
       '$symbol, no symbol field: the time sent (time_field=/t:s)');
}

# 3. partial success: the symbols whose request succeeded are applied

for my $case ([ 'part', '$symbol', [qw(AAA BBB CCC)] ],
              [ 'partb', 'batch=1', [qw(P1 P2 P3)] ])
{
    my ($zone, $form, $syms) = @$case;
    my ($ok1, $bad, $ok2) = @$syms;
    my $up = $up{$zone};
    my $list = "/$zone/api/StockPrice";

    ok(waiting($t, sub { keys %{ by_symbol($t, $list) } == 3 }),
       "partial, $form: all three served");

    my $before = by_symbol($t, $list);
    my $st0 = $t->status("/$zone");
    my $log_from = length $t->read_file('error.log');

    steer($zone, fail_symbols => { $bad => 500 });

    # $s1 from a refresh after the failing began, $s2 from a later one

    ok(passes($t, "/$zone", 'partialRefreshes', 0),
       "partial, $form: a partial refresh");
    my $s1 = by_symbol($t, $list);
    my $p1 = counter($t, "/$zone", 'partialRefreshes');

    ok(passes($t, "/$zone", 'partialRefreshes', $p1),
       "partial, $form: another partial refresh");
    my $s2 = by_symbol($t, $list);

    for my $sym ($ok1, $ok2) {
        ok($s1->{$sym} && $s2->{$sym} && $before->{$sym}
           && $s2->{$sym}{price} != $s1->{$sym}{price}
           && $s1->{$sym}{price} != $before->{$sym}{price},
           "partial, $form: $sym has new prices");
    }

    ok(same($s2->{$bad}, $s1->{$bad}),
       "partial, $form: $bad keeps its record exactly");
    ok($s1->{$bad} && $s2->{$bad} && defined $s2->{$bad}{id}
       && $s2->{$bad}{id} eq ($s1->{$bad}{id} // '')
       && $s2->{$bad}{price} == $s1->{$bad}{price},
       "partial, $form: $bad keeps its price and id");
    ok(served_as_answered($up, $s2->{$bad}, $bad, 1), "partial, \$symbol: "
       . "$bad served at its last price answered") if $form eq '$symbol';

    my $st = $t->status("/$zone");

    ok(defined $st->{failures} && defined $st0->{failures}
       && $st->{failures} == $st0->{failures},
       "partial, $form: failures unchanged");
    ok(exists $st->{lastError} && !defined $st->{lastError},
       "partial, $form: lastError null");

    # one warn line per partial refresh, none at error

    my $pa = counter($t, "/$zone", 'partialRefreshes');
    my @warn = warn_lines($t, $log_from, $zone);
    my $pb = counter($t, "/$zone", 'partialRefreshes');

    ok(@warn >= 1 && @warn >= $pa - 1 && @warn <= $pb,
       "partial, $form: one line per partial refresh (" . @warn
       . " lines, $pa-$pb partial refreshes)");
    ok(@warn && !grep({ !/\[warn\]/ || !/answered 500/ } @warn),
       "partial, $form: at warn, with the status answered")
        or diag(join "\n", @warn[0 .. ($#warn > 2 ? 2 : $#warn)]);
    ok(!grep({ /\[error\].*zone "\Q$zone\E"/ }
             split /\n/, substr($t->read_file('error.log'), $log_from)),
       "partial, $form: no error line");

    # every request fails: a failed refresh, the data kept

    my $f0 = $st->{failures} // 0;

    steer($zone, fail_symbols => { map { $_ => 500 } @$syms });

    ok(passes($t, "/$zone", 'failures', $f0), "all fail, $form: a failure");
    my $x = by_symbol($t, $list);
    my $fx = counter($t, "/$zone", 'failures');
    ok(passes($t, "/$zone", 'failures', $fx),
       "all fail, $form: another failure");

    like($t->status("/$zone")->{lastError} // '', qr/answered 500/,
         "all fail, $form: lastError says why");
    my $y = by_symbol($t, $list);

    ok(keys %$x == 3, "all fail, $form: three symbols still served");
    is(scalar(grep { same($x->{$_}, $y->{$_}) } @$syms), 3,
       "all fail, $form: data kept");
    ok(same($x->{$bad}, $s2->{$bad}),
       "all fail, $form: $bad still its old record");
    is(scalar(grep { served_as_answered($up, $x->{$_}, $_, 1) } @$syms), 3,
       "all fail, \$symbol: the prices last answered kept")
        if $form eq '$symbol';

    steer($zone);
}

# 4b. $symbol, concurrency=2, keep-alive: at most 2 connections, reused

{
    my $up = $up{reuse2};

    ok(passes($t, '/reuse2', 'refreshes', 3), 'reuse, $symbol: 4 refreshes');

    my $st = $up->stats;

    ok(($st->{prices} // 0) >= 16 && ($st->{connections} // 0) >= 1
       && $st->{connections} <= 2,
       "reuse, \$symbol, concurrency=2: at most 2 connections for "
       . ($st->{prices} // 0) . ' requests (' . ($st->{connections} // 0)
       . ')');
}

$t->done;

###############################################################################

# nginx 2: what the module has without the new parameters: connections
# reused across refreshes, redirects not followed

my $tb = StockTest->new;

my $reuse = FakeUpstream->start($tb, name => 'reuse', port => $tb->port(1));
my $redir = FakeUpstream->start($tb, name => 'redir', port => $tb->port(2));

my $key = 'redir-s3cr3t-7734';

$tb->write_file('api.key', "$key\n");

$reuse->control({ auth => 0, keepalive => 1 });
$redir->control({ auth => 0, redirect => $redir->url('/elsewhere') });

$tb->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=reuse:64k
                    interval=300ms timeout=2s symbols=MSFT,SAP;

    stockprice_poll "http://127.0.0.1:%%PORT_2%%/prices?apikey=$key"
                    zone=redir:64k interval=300ms timeout=2s
                    secret=key:%%TESTDIR%%/api.key;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location = /reuse { stockprice_status reuse; }
        location = /redir { stockprice_status redir; }
    }
}
EOF

$started = eval { $tb->run; 1 };
ok($started, 'nginx starts (no new parameters)')
    or diag(substr($@ // '', 0, 500));

# 4. one TCP connection over several refreshes

ok(passes($tb, '/reuse', 'refreshes', 3), 'reuse: 4 refreshes');

{
    my $st = $reuse->stats;
    my %conn = map { ($_->{conn} // 0) => 1 } @{ $st->{requests} // [] };

    ok(($st->{prices} // 0) >= 4, 'reuse: 4 prices requests or more');
    is($st->{connections}, 1, 'reuse: over one connection');
    is(join(',', sort keys %conn), '1', 'reuse: every request on it');
}

# 5. a redirect: a failed refresh, not followed, no secret shown

ok(passes($tb, '/redir', 'failures', 0), 'redirect: a failed refresh');

{
    my $status = $tb->get('/redir')->{content} // '';
    my $st = $tb->json_decode($status) // {};
    my $rs = $redir->stats;

    like($st->{lastError} // '', qr/answered 302/,
         'redirect: lastError names the status');
    is($st->{refreshes}, 0, 'redirect: no successful refresh');
    ok(($rs->{prices} // 0) >= 1, 'redirect: the prices URL was asked');
    is(scalar(grep { $_->{path} ne '/prices' } @{ $rs->{requests} // [] }),
       0, 'redirect: nothing asked at /elsewhere');
    like($tb->read_file('error.log'),
         qr/\[error\] .*zone "redir": .*answered 302/,
         'redirect: the error line names the status');
    ok(index($tb->read_file('error.log'), $key) < 0
       && index($status, $key) < 0,
       'redirect: the secret in neither the log nor the status');
}

$tb->done;

###############################################################################

# 6. nginx -t: bad batch=, concurrency= and $symbol uses

my $P = 'stockprice_poll "http://127.0.0.1:1/prices';

for my $case (
    [ 'batch=0', "$P\" zone=s:64k symbols=A batch=0;",
      qr/invalid batch "batch=0"/ ],
    [ 'batch=x', "$P\" zone=s:64k symbols=A batch=x;",
      qr/invalid batch "batch=x"/ ],
    [ 'concurrency=0', "$P\" zone=s:64k symbols=A concurrency=0;",
      qr/invalid concurrency "concurrency=0"/ ],
    [ '$symbol and $symbols together',
      "$P?s=\$symbol&l=\$symbols\" zone=s:64k symbols=A;",
      qr/"\$symbol" and "\$symbols"/ ],
    [ '$symbol without symbols', "$P?s=\$symbol\" zone=s:64k;",
      qr/"\$symbol" requires "symbols" or "symbols_file"/ ],
)
{
    $tb->config_fails($case->[0], $case->[1], $case->[2]);
}

done_testing;
