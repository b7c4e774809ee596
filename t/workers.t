#!/usr/bin/perl

# One poller whatever worker_processes is: the upstream sees one prices
# request per refresh and one auth call per token.

use strict;
use warnings;

use Test::More;
use Time::HiRes ();

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_file('credentials', $up->credentials);

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
worker_processes 4;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=300ms timeout=2s
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

my @workers = $t->worker_pids;
is(scalar @workers, 4, 'four workers');

ok($t->wait_status('refreshes', 8, 15), 'eight refreshes');

# read both sides between two refreshes: the counts must agree

my ($st, $up_st);

$t->wait_for(sub {
    my $a = $t->status;
    $up_st = $up->stats;
    $st = $t->status;
    return $a->{refreshes} == $st->{refreshes};
}, 5);

ok($up_st->{prices} >= $st->{refreshes}
   && $up_st->{prices} <= $st->{refreshes} + 1,
   "one prices request per refresh ($up_st->{prices} requests, "
   . "$st->{refreshes} refreshes)");
is($up_st->{auth}, 1, 'one auth call for all four workers');
is($st->{authCalls}, 1, 'status counts one auth call');

# every worker serves the same data

my %bodies;
for (1 .. 40) {
    my $r = $t->get('/api/StockPrice');
    $bodies{ $r->{headers}{etag} } = 1;
}
ok(scalar keys %bodies <= 2, 'all workers serve the same snapshot');

# the poller dies in the middle of a request: another worker takes over
# within interval plus a few seconds, and the zone is not left locked

$t->allow_log(qr/exited on signal 9/);

my $delayed = $up->stats->{delayed};

$up->control({ delay => 2 });

ok($t->wait_for(sub { $up->stats->{delayed} > $delayed }, 5),
   'a slow prices request is in flight');

my @poller;
ok($t->wait_for(sub { @poller = $t->workers_connected_to($up->port) }, 5),
   'a worker is fetching');
is(scalar @poller, 1, 'exactly one worker talks to the upstream');

my $before = $t->status->{refreshes};
my $killed = Time::HiRes::time();

kill 'KILL', $poller[0];
$up->control({});

my $r = $t->get('/status');
is($r->{status}, 200, 'status answers right after the kill');

ok($t->wait_status('refreshes', $before + 1, 10),
   'refreshes go on after the poller was killed');

my $took = Time::HiRes::time() - $killed;
ok($took < $t->limit(0.3 + 5), sprintf 'taken over in %.1f s', $took);
ok(!grep({ $_ == $poller[0] } $t->worker_pids), 'the killed worker is gone');

ok($t->wait_status('refreshes', $before + 4, 5),
   'more refreshes after the takeover');

$st = $t->status;
is($st->{authCalls}, 1, 'no new auth call after the takeover');

$t->done;

done_testing;
