#!/usr/bin/perl

# The module never holds up reload or quit: a reload keeps the zone's
# records and token and causes no refresh; quit ends at once even while an
# upstream request hangs.

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
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=30s timeout=10s
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

ok($t->wait_status('refreshes', 1), 'first refresh');

my $before = $t->get('/api/StockPrice')->{content};
my $stats = $up->stats;
my @old = $t->worker_pids;

$t->reload;

ok($t->wait_for(sub {
    my @w = $t->worker_pids;
    return @w == 2 && !grep { my $o = $_; grep { $_ == $o } @w } @old;
}, 5), 'new workers after reload, old ones gone');

is($t->get('/api/StockPrice')->{content}, $before,
   'same records (same ids) right after reload');

# a quiet half second: any upstream request in it was caused by the reload

ok(!$t->wait_for(sub {
    my $s = $up->stats;
    return $s->{auth} != $stats->{auth} || $s->{prices} != $stats->{prices};
}, 0.5, 1), 'no upstream request within 0.5 s of the reload');

my $after = $up->stats;
is($after->{auth}, $stats->{auth}, 'no auth call caused by the reload');
is($after->{prices}, $stats->{prices}, 'no refresh caused by the reload');
is($t->status->{authenticated}, JSON::PP::true, 'token kept across reload');

# 20 reloads under a steady loop of client requests (a forked client, one
# connection per request): none fails, every answer has the same records,
# the upstream hears nothing, and each time the old workers are gone
# promptly: nothing of the module keeps them alive

my $done = $t->dir . '/client.done';
my $counts = $t->dir . '/client.counts';
my $seen = $t->dir . '/client.seen';

$t->run_daemon(sub {
    my ($n, $fail, $same) = (0, 0, 0);
    my $end = time + 60;

    while (!-e $done && time < $end && $n < 100000) {
        my $r = $t->get('/api/StockPrice');
        $n++;
        $fail++ unless $r->{status} == 200;
        $same++ if ($r->{content} // '') eq $before;
        $t->write_file('client.seen', '') if $n == 10;
    }

    $t->write_file('client.counts', "$n $fail $same");
});

ok($t->wait_for(sub { -e $seen }, 5), 'client loop on');

my ($reloads, $slowest) = (0, 0);

for my $i (1 .. 20) {
    my $start = time;

    last unless $t->reload(1);

    my $took = time - $start;
    $slowest = $took if $took > $slowest;
    $reloads++;
}

$t->write_file('client.done', '');
ok($t->wait_for(sub { -s $counts }, 10), 'client loop ended');

my ($total, $fail, $same) = split ' ', $t->read_file('client.counts');

is($reloads, 20, '20 reloads, old workers gone after each');
ok($slowest < $t->limit(2),
   sprintf('old workers gone within %.2f s of a reload (at most 2 s)',
           $slowest));
ok($total >= 100, "a steady loop of client requests ($total)");
is($fail, 0, "no request failed during 20 reloads ($total requests)");
is($same, $total, 'every answer had the same records');
is($up->stats->{auth}, $stats->{auth}, 'no auth call caused by reloads');
is($up->stats->{prices}, $stats->{prices}, 'no refresh caused by reloads');
diag(sprintf('20 reloads: %d requests, %d failed; slowest old-worker exit '
     . '%.3f s', $total, $fail, $slowest)) if $ENV{TEST_VERBOSE};

# a reload with a shorter interval applies it at once (counted from the
# end of the last refresh), with the token kept

$t->write_config($t->read_file('nginx.conf')
                 =~ s/interval=30s/interval=200ms/r);
ok($t->reload(1), 'reloaded with interval=200ms');
ok($t->wait_for(sub { $up->stats->{prices} >= $stats->{prices} + 3 }, 3),
   'the shorter interval applies at once: 3 refreshes within 3 s');
is($up->stats->{auth}, $stats->{auth}, 'and no auth call');

$after = $up->stats;

# quit while a prices request hangs: a zone of a new size starts empty,
# with a new schedule, so its first refresh is due at once

$up->control({ delay => 8 });

$t->write_config($t->read_file('nginx.conf')
                 =~ s/zone=stocks:1m/zone=stocks:2m/r);
ok($t->reload(1), 'reloaded with the zone resized');

ok($t->wait_for(sub { $up->stats->{prices} > $after->{prices} }, 5),
   'a resized zone starts fresh: a request is in flight');

my $fresh = $t->status;
is($fresh->{zoneBytesTotal}, 2 * 1024 * 1024, 'the zone has its new size');
is($fresh->{symbols}, 0, 'the resized zone is empty');
is($fresh->{refreshes}, 0, 'the resized zone has no refresh yet');
is($t->get('/api/StockPrice')->{content}, '[]',
   'the resized zone serves an empty list');
ok($t->wait_for(sub {
    my $r = $t->get('/api/StockPrice');
    $r->{status} == 200;
}, 2), 'serving during the hanging request');

# a reload while that request hangs: the old worker abandons the transfer
# and exits at once, a new one takes the refresh over

my $start = time;
ok($t->reload(1), 'reloaded with a transfer in flight');
my $gone = time - $start;
ok($gone < $t->limit(1),
   sprintf('old workers gone %.2f s after the reload (under 1 s)', $gone));
ok($t->wait_for(sub { $t->workers_connected_to($up->port) }, 5),
   'a new worker took the refresh over');

my $took = $t->stop;
ok(defined $took && $took < $t->limit(1),
   sprintf('quit with a hanging upstream '
   . 'request took %.2f s', $took // -1));

# and stop (TERM) likewise: the upstream still hangs, so the first
# refresh of a new start does too

$t->run;

ok($t->wait_for(sub { $t->workers_connected_to($up->port) }, 5),
   'restarted: a request is in flight');

$took = $t->stop('TERM');
ok(defined $took && $took < $t->limit(1),
   sprintf('stop with a hanging upstream '
   . 'request took %.2f s', $took // -1));

$t->check_log;
$t->check_valgrind;
$t->cleanup;

done_testing;
