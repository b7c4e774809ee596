#!/usr/bin/perl

# A failing upstream keeps the last good data: same records, same ids, one
# clear error line per failed refresh, counters moving.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_file('credentials', $up->credentials);

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=100ms timeout=1s max_size=16k
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices?zone=small
                    zone=small:32k interval=100ms timeout=1s
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
        location = /status/small { stockprice_status small; }
    }
}
EOF2

$t->run;

ok($t->wait_status('refreshes', 2), 'good data in');

# a valid array over max_size=16k

my $big = '[' . join(',', map { qq{{"symbol":"S$_","price":$_}} } 1 .. 1000)
          . ']';

my @faults = (
    [ { mode => 'status', status => 500 }, qr/upstream answered 500/ ],
    [ { mode => 'status', status => 503 }, qr/upstream answered 503/ ],
    [ { mode => 'body', body => 'not json' }, qr/not valid JSON/ ],
    [ { mode => 'body', body => '{"a":1}' },
      qr/no valid record in upstream response, 1 skipped/ ],
    [ { mode => 'body', body => '[1,{"symbol":"","price":1}]' },
      qr/no valid record in upstream response, 2 skipped/ ],
    [ { mode => 'body', body => '42' }, qr/not a JSON array or object/ ],
    [ { mode => 'body', body => '[{"symbol":"MSFT","pri' },
      qr/not valid JSON/ ],
    [ { mode => 'close' }, qr/upstream request failed/ ],
    [ { delay => 1.5 }, qr/timed out/ ],
    [ { mode => 'body', body => $big }, qr/max_size/ ],
    [ { mode => 'body', body => $big, chunked => 1 }, qr/max_size/ ],
    [ { endless => 1 }, qr/max_size/ ],
);

for my $f (@faults) {
    my ($ctl, $re) = @$f;

    # between refreshes: take the reference copy of the data
    $up->control($ctl);

    my $before = $t->status;
    ok($t->wait_status('failures', $before->{failures} + 1),
       "$re: refresh failed");

    my $good = $t->get('/api/StockPrice')->{content};

    ok($t->wait_status('failures', $before->{failures} + 2),
       "$re: failed again");

    is($t->get('/api/StockPrice')->{content}, $good,
       "$re: same records served");

    my $st = $t->status;
    is($st->{symbols}, 3, "$re: three symbols kept");
    like($st->{lastError} // '', $re, "$re: lastError");
    ok($st->{consecutiveFailures} >= 2, "$re: consecutive failures counted");
    like($t->read_file('error.log'),
         qr/\[error\] .*stockprice zone "stocks": .*$re.*, keeping 3 symbols/,
         "$re: one clear error line");

    $up->control({});
    ok($t->wait_status('refreshes', $st->{refreshes} + 1, 10),
       "$re: recovers on the next success");
    is($t->status->{consecutiveFailures}, 0, "$re: failure streak reset");
}

# the endless body was cut off at max_size (not at the 1 s timeout: the
# lastError above), and the module hung up: the upstream stopped sending
# long before its own 5 s limit

my $secs = $up->stats->{endless_secs} // 5;
ok($secs < 3, sprintf('the module hung up on an endless body after %.2f s',
                      $secs));

# repeated failures back off: with interval=100ms, far fewer than one
# request per 100 ms; the first success restores the interval

$up->control({ mode => 'status', status => 500 });

my $st = $t->status;
ok($t->wait_status('consecutiveFailures', 2), 'failing again');

my $n = $up->stats->{prices};

ok(!$t->wait_for(sub { $up->stats->{prices} >= $n + 12 }, 3, 1),
   'failures back off: fewer than 12 requests in 3 s');

$up->control({});

$st = $t->status;
ok($t->wait_status('refreshes', $st->{refreshes} + 1, 70),
   'a success after the backoff');
ok($t->wait_status('refreshes', $st->{refreshes} + 6, 2),
   'the first success restores the interval: 5 more refreshes in 2 s');

# a zone too small for what the upstream sends keeps what it had

my $small = $t->status('/status/small');
is($small->{symbols}, 3, 'zone "small" has three symbols');

# 300 records: under max_size=16k, over what a 32k zone holds

$up->control({ records => [ map { { symbol => "LONGSYMBOL$_", price => $_ } }
                            1 .. 300 ] });

ok($t->wait_for(sub {
    $t->status('/status/small')->{failures} >= $small->{failures} + 1
}, 5), 'zone "small": refresh failed');

$small = $t->status('/status/small');
is($small->{symbols}, 3, 'zone "small" keeps its three symbols');
like($small->{lastError} // '', qr/too small.*\d+ bytes/,
     'zone "small": lastError says the size needed');
my $full = qr/\[error\] .*stockprice zone "small": .*too small/;
like($t->read_file('error.log'),
     qr/$full.*\d+ bytes needed.*keeping 3 symbols/,
     'zone "small": an error line with the size needed');
ok($t->wait_for(sub { $t->status->{symbols} == 303 }, 5),
   'zone "stocks" (1m) took them all');

$up->control({});

# secrets

my $log = $t->read_file('error.log');
unlike($log, qr/pa"ss:word/, 'password never logged');
unlike($log, qr/tok-\d+/, 'token never logged');

for my $u ('/status', '/status?format=prometheus', '/api/StockPrice') {
    my $body = $t->get($u)->{content};
    ok($body !~ /pa"ss:word/ && $body !~ /tok-\d+/,
       "$u shows neither password nor token");
}

$t->done;

done_testing;
