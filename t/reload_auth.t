#!/usr/bin/perl

# A token belongs to the auth URL, the credentials and the origin of the
# prices URL it was obtained for: a reload that changes any of them starts
# without it (an auth call before the next prices request, which carries
# only the new token), so a token never follows a reload to another host
# or other credentials.  A reload that changes none of them keeps it.
#
# Two fake upstreams, A and B, with different credentials and symbols.
# The prices URL carries "?gen=N", N counting the configurations, so
# that every prices request an upstream logs names the configuration
# that sent it (old workers may still poll while a reload goes on); the
# query is no part of the origin the token is bound to.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;

my $upa = FakeUpstream->start($t, name => 'a', port => $t->port(1),
                              user => 'alice', password => 'pa"ss:word');
my $upb = FakeUpstream->start($t, name => 'b', port => $t->port(2),
                              users => [ [ 'bob', 'b0b:s3cret' ],
                                         [ 'carol', 'c@rol\\pw' ] ]);

$upb->control({ symbols => [qw(IBM ORCL)] });

$t->write_file('credentials.a', $upa->credentials);
$t->write_file('credentials.b', $upb->credentials(0));
$t->write_file('credentials.b2', $upb->credentials(1));

sub conf {
    my (%c) = @_;

    return <<"EOF2";
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll $c{url} zone=stocks:1m
                    interval=$c{interval} timeout=2s
                    auth=$c{auth}
                    credentials=%%TESTDIR%%/$c{cred};

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF2
}

# requests an upstream received, in order, and their count

sub total {
    my ($s) = @_;

    return ($s->{auth} // 0) + ($s->{prices} // 0);
}

# the requests an upstream received after the first $n of them (undef if
# its log of the last 50 no longer holds them all)

sub log_since {
    my ($up, $n) = @_;

    my $s = $up->stats;
    my @r = @{ $s->{requests} // [] };
    my $skip = $n - (total($s) - @r);

    return undef if $skip < 0;
    return [ @r[$skip .. $#r] ];
}

sub bearer {
    my ($req) = @_;

    my $h = $req->{headers}{authorization} // '';
    return $h =~ /^Bearer (.+)$/ ? $1 : undef;
}

sub first_prices {
    my ($log, $gen) = @_;

    for my $i (0 .. $#$log) {
        my $r = $log->[$i];
        return $i if $r->{path} eq '/prices' && $r->{query} =~ /\bgen=$gen\b/;
    }

    return undef;
}

sub served {
    my $list = $t->get_json('/api/StockPrice') // [];
    return { map { $_->{symbol} => 1 } @$list };
}

sub username {
    my ($req) = @_;

    my $c = $t->json_decode($req->{body});
    return ref $c eq 'HASH' ? $c->{username} // '' : '';
}

# 1. A for everything

$t->write_config(conf(url => $upa->url('/prices?gen=1'),
                      auth => $upa->url('/auth'),
                      cred => 'credentials.a', interval => '1s'));
$t->run;

ok($t->wait_status('refreshes', 1), 'first refresh from A');
ok(served()->{MSFT}, "A's records served");

my $sa = $upa->stats;
my @a_tokens = @{ $sa->{issued} };

ok(@a_tokens >= 1, 'A issued a token');
is("$sa->{requests}[0]{method} $sa->{requests}[0]{path}", 'POST /auth',
   "A's first request is POST /auth");

# 2. a reload moves url, auth and credentials to B

my $refreshes = $t->status->{refreshes};

$t->write_config(conf(url => $upb->url('/prices?gen=2'),
                      auth => $upb->url('/auth'),
                      cred => 'credentials.b', interval => '1s'));
ok($t->reload(1), 'reloaded to B: new workers, old ones gone');

ok($t->wait_for(sub {
    return 0 unless $upb->stats->{prices} >= 1;
    return 0 unless ($t->status->{refreshes} // 0) > $refreshes;
    my $s = served();
    return $s->{IBM} && $s->{ORCL};
}, 10), "a refresh from B landed: B's records served");

my $sb = $upb->stats;
my @b_log = @{ $sb->{requests} };
my %b_issued = map { $_ => 1 } @{ $sb->{issued} };

ok(total($sb) <= 50, "B's log holds every request it received");
is("$b_log[0]{method} $b_log[0]{path}", 'POST /auth',
   "B's first request is POST /auth");

my @foreign = grep {
    defined $_->{headers}{authorization}
    && !(defined bearer($_) && $b_issued{ bearer($_) })
} @b_log;

is(join("\n", map { "$_->{line}: $_->{headers}{authorization}" } @foreign),
   '', 'no request B received carries an Authorization B did not issue');

my @leaked = grep {
    my $text = JSON::PP->new->canonical->encode($_);
    grep { index($text, $_) >= 0 } @a_tokens;
} @b_log;

is(join("\n", map { $_->{line} } @leaked), '',
   'the token A issued never reached B');
is($sb->{status}{401} // 0, 0, 'B answered no 401');
is($t->status->{authenticated}, JSON::PP::true, 'authenticated with B');

# 3. a reload changes only the credentials (another user B accepts)

$sb = $upb->stats;
my $b_mark = total($sb);
my %b_before = map { $_ => 1 } @{ $sb->{issued} };

$t->write_config(conf(url => $upb->url('/prices?gen=3'),
                      auth => $upb->url('/auth'),
                      cred => 'credentials.b2', interval => '1s'));
ok($t->reload(1), 'reloaded with other credentials');

ok($t->wait_for(sub {
    my $log = log_since($upb, $b_mark) // return 0;
    return defined first_prices($log, 3);
}, 10), 'a prices request after the reload');

my $log = log_since($upb, $b_mark);

SKIP: {
    ok($log, "B's log holds every request since the reload")
        or skip 'log lost', 4;

    my $i = first_prices($log, 3) // skip 'no prices request', 4;
    my $tok = bearer($log->[$i]);
    my @auth = grep {
        $_->{path} eq '/auth' && username($_) eq 'carol'
    } @$log[0 .. $i - 1];

    ok(@auth >= 1, 'an auth call with the new credentials comes before '
       . 'the first prices request after the reload');
    ok(defined $tok && !$b_before{$tok}
       && grep({ $_ eq $tok } @{ $upb->stats->{issued} }),
       'the first prices request after the reload carries a token '
       . 'issued after it');
    ok(defined $tok && grep({ ($_->{token} // '') eq $tok } @auth),
       'that token is the one the new credentials obtained');

    my @old = grep {
        $_->{path} eq '/prices' && $_->{query} =~ /\bgen=3\b/
        && (!defined bearer($_) || $b_before{ bearer($_) })
    } @$log;

    is(scalar @old, 0, 'no prices request of the new configuration '
       . 'carries a token of before the reload');
}

# 4. a reload changes only the prices URL's origin: back to A (which takes
# any token now), B's auth and credentials kept

$upa->control({ auth => 0 });

$sa = $upa->stats;
$sb = $upb->stats;

my $a_mark = total($sa);
my $b_auth = $sb->{auth};
%b_before = map { $_ => 1 } @{ $sb->{issued} };
my %a_issued = map { $_ => 1 } @{ $sa->{issued} };

$t->write_config(conf(url => $upa->url('/prices?gen=4'),
                      auth => $upb->url('/auth'),
                      cred => 'credentials.b2', interval => '1s'));
ok($t->reload(1), 'reloaded with the prices URL on another origin');

ok($t->wait_for(sub {
    my $log = log_since($upa, $a_mark) // return 0;
    return defined first_prices($log, 4);
}, 10), 'a prices request to A after the reload');

$log = log_since($upa, $a_mark);

SKIP: {
    ok($log, "A's log holds every request since the reload")
        or skip 'log lost', 3;

    my $i = first_prices($log, 4) // skip 'no prices request', 3;

    my $a_tok = bearer($log->[$i]);

    ok(defined $a_tok && !$b_before{$a_tok} && !$a_issued{$a_tok},
       'the first prices request to A after the reload carries no token '
       . 'obtained before it');
    ok($upb->stats->{auth} > $b_auth && defined $a_tok
       && grep({ $_ eq $a_tok } @{ $upb->stats->{issued} }),
       'but one B issued after the reload: a new auth call came first');

    # not one that a worker of the configuration before got for B's prices

    my @to_b = grep {
        $_->{path} eq '/prices' && (bearer($_) // '') eq ($a_tok // '')
    } @{ $upb->stats->{requests} };

    is(scalar @to_b, 0, "the token sent to A's prices was never sent to "
       . "B's prices");
}

# 5. a reload changes nothing the token is bound to, only the interval

$sa = $upa->stats;
$sb = $upb->stats;
$a_mark = total($sa);

my ($last) = reverse grep { $_->{path} eq '/prices' } @{ $sa->{requests} };
my $kept = $last ? bearer($last) : undef;

$t->write_config(conf(url => $upa->url('/prices?gen=4'),
                      auth => $upb->url('/auth'),
                      cred => 'credentials.b2', interval => '700ms'));
ok($t->reload(1), 'reloaded with only the interval changed');

ok(!$t->wait_for(sub {
    $upb->stats->{auth} != $sb->{auth} || $upa->stats->{auth} != $sa->{auth}
}, 1.5, 1), 'no auth call within 1.5 s of the reload');

ok($t->wait_for(sub {
    my $log = log_since($upa, $a_mark) // return 0;
    return grep { $_->{path} eq '/prices' } @$log;
}, 5), 'a refresh after the reload');

my @after = grep { $_->{path} eq '/prices' }
             @{ log_since($upa, $a_mark) // [] };

is(join(' ', grep { $_ ne ($kept // '') } map { bearer($_) // '-' } @after),
   '', 'its prices requests carry the token of before the reload');
is($t->status->{authenticated}, JSON::PP::true, 'still authenticated');

$t->done;

done_testing;
