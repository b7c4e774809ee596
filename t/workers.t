#!/usr/bin/perl

# One poller whatever worker_processes is: the upstream sees one prices
# request per refresh and one auth call per token.

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

$t->done;

done_testing;
