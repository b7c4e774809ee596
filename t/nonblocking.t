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

$t->write_file('credentials', $up->credentials);

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=100ms timeout=5s
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

ok($t->wait_status('refreshes', 1), 'data in');

$up->control({ delay => 3 });

my $n = $up->stats->{delayed};
ok($t->wait_for(sub { $up->stats->{delayed} > $n }, 5),
   'a slow upstream request is in flight');

my $r0 = $t->status->{refreshes};

# 20 sequential requests: each answered at once, all within the slow
# request's 3 s

sub burst {
    my ($what) = @_;

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

    is($ok, 20, "$what: 20 requests answered with data");
    ok($elapsed < 2.5, "$what: all of them while the upstream was answering");
    ok($max < $t->limit(0.1),
       sprintf("$what: slowest request %.1f ms, under 100 ms",
                           $max * 1000));
}

burst('slow prices');

# the request in flight keeps its delay, the next ones have none
$up->control({});

ok($t->wait_status('refreshes', $r0 + 1, 5), 'slow refresh done');
my $st = $t->status;
is($st->{failures}, 0, 'slow refresh has not failed');

# a slow auth: the upstream forgets the token and takes 3 s to issue one

$up->control({ forget => 1, auth_delay => 3 });

$n = $up->stats->{delayed};
ok($t->wait_for(sub { $up->stats->{delayed} > $n }, 5),
   'a slow auth request is in flight');

burst('slow auth');

ok($t->wait_status('refreshes', $st->{refreshes} + 1, 5),
   'refresh after the slow auth done');
is($t->status->{failures}, 0, 'slow auth has not failed');

$t->done;

done_testing;
