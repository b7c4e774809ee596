#!/usr/bin/perl

# The start and execute phases: authenticate once, then refresh every
# interval; what the module sends upstream; re-auth once on 401.

use strict;
use warnings;

use Test::More;
use JSON::PP;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_file('credentials', $up->credentials);
# the upstream serves IBM too and ignores ?symbols=: dropping is the module's

my %serve = (symbols => [qw(MSFT AAPL SAP IBM)], filter => 0);
$up->control({ %serve });

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=200ms timeout=2s symbols=MSFT,AAPL,SAP
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices?region=eu
                    zone=eu:64k interval=200ms symbols=SAP
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location /eu/StockPrice { stockprice eu; }
        location = /status { stockprice_status stocks; }
        location = /status/eu { stockprice_status eu; }
    }
}
EOF

$t->run;

my $json = JSON::PP->new;

ok($t->wait_status('refreshes', 1), 'first refresh');
my $first = $t->get_json('/api/StockPrice');

ok($t->wait_status('refreshes', 7), 'seven refreshes');
my $later = $t->get_json('/api/StockPrice');

my %p1 = map { $_->{symbol} => $_->{price} } @$first;
my %p2 = map { $_->{symbol} => $_->{price} } @$later;

is_deeply([sort keys %p2], [qw(AAPL MSFT SAP)],
          'symbols= drops the symbols not asked for');
ok((grep { $p1{$_} != $p2{$_} } keys %p2), 'prices change across refreshes');

my $st = $up->stats;
is($t->status->{authCalls}, 1, 'zone "stocks" authenticated once');
is($st->{auth}, 2, 'auth called once per zone over many refreshes');

my @prices = grep { $_->{path} eq '/prices' && $_->{query} !~ /region/ }
             @{ $st->{requests} };
my $req = $prices[-1];

is($req->{method}, 'GET', 'prices request is a GET');
is($req->{query}, 'symbols=MSFT,AAPL,SAP', '?symbols= sent upstream')
    or diag explain $req;
like($req->{headers}{authorization} // '', qr/^Bearer tok-\d+-\d+$/,
     'bearer token sent');
is($req->{headers}{accept}, 'application/json', 'Accept: application/json');
like($req->{headers}{'user-agent'} // '', qr{^ngx_stockprice/\d},
     'User-Agent names the module and its version');

my ($eu) = grep { $_->{query} =~ /region/ } reverse @{ $st->{requests} };
is($eu->{query}, 'region=eu&symbols=SAP', '&symbols= after an existing query');

my ($auth) = grep { $_->{path} eq '/auth' } @{ $st->{requests} };
is($auth->{method}, 'POST', 'auth is a POST');
is($auth->{headers}{'content-type'}, 'application/json',
   'auth Content-Type: application/json');
is_deeply($json->decode($auth->{body}),
          { username => 'alice', password => 'pa"ss:word' },
          'auth body is the JSON-escaped credentials');

# the status page (CONTRACT section 5)

my $r = $t->get('/status');
is($r->{status}, 200, 'status 200');
like($r->{headers}{'content-type'} // '', qr{^application/json},
     'status is JSON');

my $s = $json->decode($r->{content});
is($s->{zone}, 'stocks', 'status: zone');
is($s->{symbols}, 3, 'status: symbols');
is($s->{records}, 3, 'status: records (history=1)');
ok($s->{refreshes} >= 7, 'status: refreshes');
is($s->{failures}, 0, 'status: failures');
is($s->{consecutiveFailures}, 0, 'status: consecutiveFailures');
ok(exists $s->{lastError} && !defined $s->{lastError},
   'status: lastError null');
ok(JSON::PP::is_bool($s->{authenticated}) && $s->{authenticated},
   'status: authenticated true');
ok(defined $s->{lastSuccess} && defined $s->{nextRefresh},
   'status: lastSuccess and nextRefresh');
ok($s->{zoneBytesUsed} > 0 && $s->{zoneBytesUsed} <= $s->{zoneBytesTotal}
   && $s->{zoneBytesTotal} <= 1024 * 1024,
   'status: zone bytes used and total');

$r = $t->get('/status?format=prometheus');
is($r->{status}, 200, 'prometheus status 200');
like($r->{headers}{'content-type'} // '', qr{^text/plain},
     'prometheus text/plain');

my @samples = grep { !/^#/ && length } split /\n/, $r->{content};
ok(@samples >= 8, 'prometheus: samples');
is((grep { !/^stockprice_\w+\{zone="stocks"(?:,[a-z]+="[^"]*")*\}
                   \ -?[0-9.eE+]+$/x } @samples),
   0, 'prometheus: every sample is stockprice_*{zone="stocks",...} value');
like($r->{content}, qr/^stockprice_\w*refreshes\w*\{zone="stocks"\} [1-9]/m,
     'prometheus: refreshes counted');

# the upstream forgets its tokens once: each zone's next prices request
# gets 401, then one auth call and one retry with the new token succeed

ok($t->wait_status('refreshes', 8), 'refreshing');

my $eus = '/status/eu';
my ($s0, $e0) = ($t->status, $t->status($eus));
my $u0 = $up->stats;

$up->control({ %serve, forget => 1 });

ok($t->wait_for(sub {
    $t->status->{refreshes} >= $s0->{refreshes} + 2
    && $t->status($eus)->{refreshes} >= $e0->{refreshes} + 2
}, 10), 'both zones refreshed twice after the upstream forgot the tokens');

my ($s1, $e1) = ($t->status, $t->status($eus));
my $u1 = $up->stats;

is($s1->{authCalls} - $s0->{authCalls}, 1, '401 on prices: one re-auth');
is($s1->{failures}, $s0->{failures}, '401 on prices: the retry succeeded');
is($e1->{authCalls} - $e0->{authCalls}, 1, 'zone "eu": one re-auth');
is($u1->{auth} - $u0->{auth}, 2, 'upstream saw one auth call per zone');
is(($u1->{status}{401} // 0) - ($u0->{status}{401} // 0), 2,
   'upstream refused one prices request per zone');

# the refused request and its retry, in zone "stocks", among the requests
# since the upstream forgot the tokens (its log keeps the last 50)

my @log = @{ $u1->{requests} };
my $since = $u1->{auth} + $u1->{prices} - $u0->{auth} - $u0->{prices};

ok($since <= @log, "the $since requests since then are in the log");
splice @log, 0, @log - $since if @log > $since;

my @seq = grep {
    $_->{path} eq '/auth' || $_->{path} eq '/prices' && $_->{query} !~ /region/
} @log;

my ($i) = grep { $seq[$_]{path} eq '/prices' && $seq[$_]{status} == 401 }
          0 .. $#seq;

ok(defined $i, 'the refused prices request of zone "stocks" is in the log');

# the next prices request of zone "stocks" is the retry; an auth of zone
# "eu" may come in between, so the auth is the one whose token it carries

my ($j) = defined $i ? grep { $seq[$_]{path} eq '/prices' } $i + 1 .. $#seq
                     : ();
my $retry = defined $j ? $seq[$j] : {};
my @between = defined $j ? @seq[$i + 1 .. $j - 1] : ();
my $bearer = $retry->{headers}{authorization} // '';

ok((grep { $_->{path} eq '/auth' } @between), 'after the 401: auth');
is($retry->{status}, 200, 'then the prices request again: 200');
ok((grep { defined $_->{token} && $bearer eq "Bearer $_->{token}" } @between),
   'the retry has the new token')
    or diag explain \@seq;

# an upstream that refuses every token: one re-auth and one retry per
# refresh, no storm

($s0, $u0) = ($t->status, $up->stats);
my $eu0 = $t->status($eus);

$up->control({ %serve, mode => '401' });

ok($t->wait_status('failures', $s0->{failures} + 2), 'refreshes fail');

$up->control({ %serve });

ok($t->wait_status('refreshes', $s0->{refreshes} + 1),
   'the next refresh after the upstream accepts tokens again succeeds');
is($t->status->{consecutiveFailures}, 0, 'no failure streak after re-auth');

($s1, $u1) = ($t->status, $up->stats);
my $eu1 = $t->status($eus);

my $f = $s1->{failures} - $s0->{failures};
my $na = $s1->{authCalls} - $s0->{authCalls};

# each failed refresh: 401, auth, 401; the recovery: 401 (its token was
# forgotten), auth, 200; a refresh may straddle the switches

ok($na >= $f && $na <= $f + 1,
   "one re-auth per failed refresh ($na auth calls, $f failures)");

my $pr = $u1->{prices} - $u0->{prices};
my $fails = $f + $eu1->{failures} - $eu0->{failures};
my $refr = $s1->{refreshes} - $s0->{refreshes}
           + $eu1->{refreshes} - $eu0->{refreshes};

# the counters were read one after the other: each of the two zones may
# have had a refresh in flight, its requests counted but not its end

ok($pr <= 2 * ($fails + $refr + 2),
   "at most two prices requests per refresh ($pr requests, "
   . ($fails + $refr) . ' refreshes, and up to 2 in flight)');

$t->done;

done_testing;
