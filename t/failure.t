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
                    interval=100ms timeout=1s
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF2

$t->run;

ok($t->wait_status('refreshes', 2), 'good data in');

my @faults = (
    [ { mode => 'status', status => 500 }, qr/upstream answered 500/ ],
    [ { mode => 'status', status => 503 }, qr/upstream answered 503/ ],
    [ { mode => 'body', body => 'not json' }, qr/not valid JSON/ ],
    [ { mode => 'body', body => '{"a":1}' }, qr/not a JSON array/ ],
    [ { mode => 'body', body => '[{"symbol":"MSFT","pri' }, qr/not valid JSON/ ],
    [ { mode => 'close' }, qr/upstream request failed/ ],
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

my $log = $t->read_file('error.log');
unlike($log, qr/pa"ss:word/, 'password never logged');
unlike($log, qr/tok-\d+/, 'token never logged');

$t->done;

done_testing;
