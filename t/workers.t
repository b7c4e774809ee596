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

    # a socket per worker: connections spread over all of them
    server {
        listen 127.0.0.1:%%PORT_2%% reuseport;

        location /api/StockPrice {
            stockprice stocks;
            add_header X-Worker $pid;
        }
    }
}
EOF2

$t->run;

my @workers = $t->worker_pids;
is(scalar @workers, 4, 'four workers');

ok($t->wait_status('refreshes', 8, 15), 'eight refreshes');

# read both sides between two refreshes: the counts must agree

my ($st, $up_st);

ok($t->wait_for(sub {
    my $a = $t->status;
    $up_st = $up->stats;
    $st = $t->status;
    return $a->{refreshes} == $st->{refreshes};
}, 5), 'upstream and status read between two refreshes');

ok($up_st->{prices} >= $st->{refreshes}
   && $up_st->{prices} <= $st->{refreshes} + 1,
   "one prices request per refresh ($up_st->{prices} requests, "
   . "$st->{refreshes} refreshes)");
is($up_st->{auth}, 1, 'one auth call for all four workers');
is($st->{authCalls}, 1, 'status counts one auth call');

# every worker serves the same data: while the one refresh is held up by
# the upstream (1.5 s, within its timeout) nothing is published, so each
# of the four answers with the same ETag and body; X-Worker says which
# worker answered.  Should the requests take longer than the hold, again.

my $spread = 'http://127.0.0.1:' . $t->port(2) . '/api/StockPrice';
my (%served, $held, $ended);

for my $try (1 .. 5) {
    my $delayed = $up->stats->{delayed} // 0;
    my $until = Time::HiRes::time() + 1.5;

    $up->control({ delay => 1.5 });

    my $slow = $t->wait_for(sub {
        ($up->stats->{delayed} // 0) > $delayed
    }, 5);
    my $refreshes = $t->status->{refreshes};

    %served = ();

    for (1 .. 100) {
        my $r = $t->get($spread);
        $served{ $r->{headers}{'x-worker'} // '' } =
            join ' ', $r->{status}, $r->{headers}{etag} // '', $r->{content};
        last if keys %served >= @workers;
    }

    $held = $slow && Time::HiRes::time() < $until;

    $up->control({});
    $ended = $t->wait_status('refreshes', $refreshes + 1, 5);

    last if $held || !$ended;
}

ok($held, 'the workers asked while no refresh could publish');
ok($ended, 'then the held-up refresh ended');
is_deeply([ sort { $a <=> $b } keys %served ], \@workers,
          'each of the four workers answered');
is(scalar(keys %{{ reverse %served }}), 1,
   'all workers serve the same snapshot: the same ETag and body')
    or diag explain \%served;
like((values %served)[0] // '', qr/^200 "[^"]+" \[\{/,
     'a 200 with an ETag and the records');

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
