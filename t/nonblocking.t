#!/usr/bin/perl

# The event loop never waits for the upstream: while the upstream takes
# 3 s to answer, client requests still answer at once.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$up->control({ auth => 0 });

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=100ms timeout=5s;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF2

$t->run;

ok($t->wait_status('refreshes', 1), 'data in');

$up->control({ auth => 0, delay => 3 });

my $n = $up->stats->{prices};
ok($t->wait_for(sub { $up->stats->{prices} > $n }, 5),
   'a slow upstream request is in flight');

my $start = time;
my ($max, $ok) = (0, 0);

for (1 .. 20) {
    my $t0 = time;
    my $r = $t->get('/api/StockPrice');
    my $dt = time - $t0;
    $max = $dt if $dt > $max;
    $ok++ if $r->{status} == 200 && $r->{content} =~ /MSFT/;
}

my $elapsed = time - $start;

is($ok, 20, '20 requests answered with data during the slow refresh');
ok($elapsed < 2.5, 'all of them while the upstream was still answering');
ok($max < 0.1, sprintf('slowest request %.1f ms, under 100 ms', $max * 1000));

my $st = $t->status;
is($st->{failures}, 0, 'slow refresh has not failed');

$t->done;

done_testing;
