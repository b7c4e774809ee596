#!/usr/bin/perl

# A stalled poller (SIGSTOP, a hung host) loses the refresh lease when its
# deadline passes, and another worker takes over and publishes newer data.
# When the stalled worker runs again, it drops what it was doing: it never
# publishes its older body over the newer data, never counts its late
# failure, never reschedules, and says so in one notice line.  Twice: the
# poller stopped during the work on a large body, and stopped while its
# request is in flight.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $LOST = qr/\[notice\] .*stockprice zone "stocks": lost the refresh lease/;

# the workers this file has stopped: continued whatever happens, before the
# harness's own END block stops nginx (END blocks run last defined first)

my %stopped;

END {
    for my $pid (keys %stopped) {
        kill 'CONT', $pid if StockTest::alive($pid);
    }
}


sub proc_state {
    my ($pid) = @_;

    open my $fh, '<', "/proc/$pid/stat" or return '';
    my $stat = <$fh> // '';
    close $fh;

    return $stat =~ /^\d+ \(.*\) (\S)/ ? $1 : '';
}


sub stop_worker {
    my ($t, $pid) = @_;

    # only a worker of this nginx
    return 0 unless grep { $_ == $pid } $t->worker_pids;

    $stopped{$pid} = 1;
    kill 'STOP', $pid;

    return $t->wait_for(sub { proc_state($pid) eq 'T' }, 2);
}


sub cont_worker {
    my ($t, $pid) = @_;

    return unless delete $stopped{$pid};

    kill 'CONT', $pid;
    $t->wait_for(sub { proc_state($pid) ne 'T' }, 2);
}


sub config {
    my ($zone, $max_size) = @_;

    return <<"EOF2";
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:$zone
                    interval=60s timeout=2s max_size=$max_size;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF2
}


# comparable text of an ISO-8601 UTC time, fraction to nanoseconds

sub time_key {
    my ($ts) = @_;

    my ($s, $f) = ($ts // '')
        =~ /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/
        or return '';

    return $s . '.' . substr(($f // '') . '0' x 9, 0, 9);
}


# the oldest measurementTimeStamp in a list (a regex: the list may be
# megabytes, too large for JSON::PP)

sub oldest_measurement {
    my ($body) = @_;

    my @k = sort map { time_key($_) }
            $body =~ /"measurementTimeStamp":"([^"]*)"/g;

    return $k[0] // '';
}


sub count_lines {
    my ($text, $re) = @_;

    return scalar grep { $_ =~ $re } split /\n/, $text;
}


# the data and the counters the takeover left, before the stalled worker
# runs again

sub snapshot {
    my ($t) = @_;

    my $r = $t->get('/api/StockPrice');

    return {
        status => $t->status,
        body   => $r->{content} // '',
        etag   => $r->{headers}{etag} // '',
    };
}


# continue the stalled worker, wait for its notice (bounded) and a quiet
# while, then check that it changed nothing

sub check_stale {
    my ($t, $what, $pid, $before, $log_from, $error_re) = @_;

    my $cont_from = length $t->read_file('error.log');

    cont_worker($t, $pid);

    $t->wait_for(sub {
        count_lines(substr($t->read_file('error.log'), $cont_from), $LOST)
    }, 5);

    # the quiet while: anything the stale worker still does shows by now
    sleep 1;

    ok(StockTest::alive($pid), "$what: the stalled worker runs again");

    my $after = snapshot($t);
    my ($b, $a) = ($before->{status}, $after->{status});

    is($a->{symbols}, 3, "$what: still the 3 symbols of the takeover");
    is($after->{etag}, $before->{etag}, "$what: the same ETag");
    ok($after->{body} eq $before->{body},
       sprintf("$what: the list is the same bytes (%d before, %d after)",
               length $before->{body}, length $after->{body}));
    my $oldest = oldest_measurement($before->{body});
    ok($oldest ne '' && oldest_measurement($after->{body}) ge $oldest,
       "$what: no measurementTimeStamp older than the takeover's");

    is($a->{refreshes}, $b->{refreshes}, "$what: refreshes unchanged");
    is($a->{failures}, $b->{failures}, "$what: failures unchanged");
    is($a->{consecutiveFailures}, $b->{consecutiveFailures},
       "$what: consecutiveFailures unchanged");
    is($a->{lastError}, $b->{lastError}, "$what: lastError unchanged");
    is($a->{skippedRecords}, $b->{skippedRecords},
       "$what: skippedRecords unchanged");
    is($a->{nextRefresh}, $b->{nextRefresh},
       "$what: nextRefresh unchanged (not rescheduled)");

    my $log = $t->read_file('error.log');

    is(count_lines(substr($log, $log_from), $LOST), 1,
       "$what: one notice line, lost the refresh lease");

    my @errors = grep { /\[error\]/ && $_ =~ $error_re }
                 split /\n/, substr($log, $cont_from);
    is(join("\n", @errors), '', "$what: no error line for the stale refresh");

}


###############################################################################

# 1. stopped during the work on a large body: 300,001 records, some 11 MB,
# parsed and rendered in slices for a good fraction of a second

{
    my $t = StockTest->new;
    my $up = FakeUpstream->start($t);

    my $N = 300000;
    my $file = $t->write_file('big.json',
        '[' . join(',', map { sprintf '{"symbol":"S%06d","price":%d.25}',
                                      $_, $_ } 1 .. $N)
        . ',{"symbol":"S000001","price":0.5}]');

    my %big = (auth => 0, mode => 'body', body_file => $file, delay => 0.5);

    $t->write_config(config('256m', '64m'));

    my ($pid, $log_from, $prices_from, $mid_work);
    my $what = 'stopped during the work on a body';

    # a stop that comes too late (the body already published) is retried
    # on a fresh nginx, with a shorter pause

    for my $pause (0.03, 0.01, 0) {
        $up->control(\%big);

        $log_from = length $t->read_file('error.log');
        $prices_from = $up->stats->{prices} // 0;
        $t->run;

        my @poller;
        $t->wait_for(sub { @poller = $t->workers_connected_to($up->port) },
                     5);

        unless (@poller == 1) {
            fail("$what: one worker fetches the large body (@poller)");
            last;
        }

        $pid = $poller[0];

        # the transfer ends: curl lets the connection go, and the work on
        # the body begins

        my $end = time + $t->limit(10);
        my $gone = 0;

        for (1 .. 5000) {
            if (!$t->workers_connected_to($up->port)) {
                $gone = 1;
                last;
            }
            last if time > $end;
            sleep 0.002;
        }

        unless ($gone) {
            fail("$what: the large body arrives within 10 s");
            last;
        }

        sleep $pause;

        unless (stop_worker($t, $pid)) {
            fail("$what: worker $pid stopped");
            last;
        }

        $up->control({ auth => 0, symbols => [qw(MSFT AAPL SAP)] });

        my $st = $t->status;

        if (($st->{refreshes} // 0) == 0 && ($st->{symbols} // 0) == 0) {
            $mid_work = 1;
            last;
        }

        diag("$what: stopped $pause s after the transfer, too late "
             . "(already published)");

        cont_worker($t, $pid);
        $t->stop;
    }

    ok($mid_work, "$what: worker stopped before it published");

    if ($mid_work) {
        ok($t->wait_for(sub {
               my $st = $t->status;
               ($st->{refreshes} // 0) >= 1 && ($st->{symbols} // 0) == 3
           }, 15),
           "$what: another worker takes over and publishes");

        is(proc_state($pid), 'T', "$what: the poller is still stopped");
        is($up->stats->{prices} - $prices_from, 2,
           "$what: two prices requests, the stalled and the takeover");

        my $before = snapshot($t);
        my $b = $before->{status};

        is($b->{refreshes}, 1, "$what: one refresh, the takeover's");
        is($b->{failures}, 0, "$what: no failure");
        is($b->{lastError}, undef, "$what: no lastError");

        my $list = $t->json_decode($before->{body}) // [];
        is(join(',', map { $_->{symbol} } @$list), 'AAPL,MSFT,SAP',
           "$what: the takeover's 3 symbols served");

        is(count_lines(substr($t->read_file('error.log'), $log_from), $LOST),
           0, "$what: no notice while the stalled worker is stopped");

        check_stale($t, $what, $pid, $before,
                    $log_from, qr/stockprice zone "stocks"/);
    }

    cont_worker($t, $pid) if $pid;

    $t->done;
}


###############################################################################

# 2. stopped while its request is in flight: timeout=2s, a lease of 4 s;
# the upstream answers after 1.5 s into the stopped worker's socket

{
    my $t = StockTest->new;
    my $up = FakeUpstream->start($t);

    my $what = 'stopped with its request in flight';

    $up->control({ auth => 0, delay => 1.5 });

    $t->write_config(config('1m', '1m'));

    my $log_from = length $t->read_file('error.log');
    $t->run;

    my @poller;
    ok($t->wait_for(sub { ($up->stats->{delayed} // 0) >= 1 }, 5),
       "$what: the first prices request is in flight");
    ok($t->wait_for(sub { @poller = $t->workers_connected_to($up->port) },
                    5),
       "$what: a worker is fetching");
    is(scalar @poller, 1, "$what: exactly one worker talks to the upstream");

    my $pid = $poller[0];

    if ($pid && ok(stop_worker($t, $pid), "$what: poller $pid stopped")) {

        # the next request is answered at once, with other prices
        $up->control({ auth => 0 });

        is($t->status->{refreshes}, 0, "$what: nothing published yet");

        ok($t->wait_status('refreshes', 1, 15),
           "$what: another worker takes over and refreshes");

        is(proc_state($pid), 'T', "$what: the poller is still stopped");
        is($up->stats->{prices}, 2,
           "$what: two prices requests, the stalled and the takeover");

        my $before = snapshot($t);
        my $b = $before->{status};

        is($b->{symbols}, 3, "$what: the takeover's 3 symbols");
        is($b->{failures}, 0, "$what: no failure before");
        is($b->{consecutiveFailures}, 0,
           "$what: no consecutive failure before");
        is($b->{lastError}, undef, "$what: no lastError before");

        # by now the stalled worker's 2 s are long over: its late timeout
        # (or its late body) must leave failures 0, consecutiveFailures 0
        # and lastError null, as checked before

        check_stale($t, $what, $pid, $before, $log_from, qr/timed out/);
    }

    cont_worker($t, $pid) if $pid;

    $t->done;
}

done_testing;
