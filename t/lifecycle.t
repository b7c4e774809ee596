#!/usr/bin/perl

# The module never holds up reload or quit: a reload keeps the zone's
# records and token and causes no refresh; quit ends at once even while an
# upstream request hangs.

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
}, 0.5), 'no upstream request within 0.5 s of the reload');

my $after = $up->stats;
is($after->{auth}, $stats->{auth}, 'no auth call caused by the reload');
is($after->{prices}, $stats->{prices}, 'no refresh caused by the reload');
is($t->status->{authenticated}, JSON::PP::true, 'token kept across reload');

# client requests during reloads: none fails, the data stays, the
# upstream hears nothing

my ($fail, $same, $total) = (0, 0, 0);

for my $i (1 .. 3) {
    my @w = $t->worker_pids;

    $t->reload;

    for (1 .. 30) {
        my $r = $t->get('/api/StockPrice');
        $total++;
        $fail++ unless $r->{status} == 200;
        $same++ if $r->{content} eq $before;
    }

    $t->wait_for(sub {
        my %now = map { $_ => 1 } $t->worker_pids;
        return !grep { $now{$_} } @w;
    }, 5);
}

is($fail, 0, "no request failed during three reloads ($total requests)");
is($same, $total, 'every answer had the same records');
is($up->stats->{auth}, $stats->{auth}, 'no auth call caused by reloads');
is($up->stats->{prices}, $stats->{prices}, 'no refresh caused by reloads');

$after = $up->stats;

# quit while a prices request hangs: a zone of a new size starts empty,
# with a new schedule, so its first refresh is due at once

$up->control({ delay => 8 });

$t->write_config($t->read_file('nginx.conf')
                 =~ s/zone=stocks:1m/zone=stocks:2m/r);
$t->reload;

ok($t->wait_for(sub { $up->stats->{prices} > $after->{prices} }, 5),
   'a resized zone starts fresh: a request is in flight');
ok($t->wait_for(sub {
    my $r = $t->get('/api/StockPrice');
    $r->{status} == 200;
}, 2), 'serving during the hanging request');

my $took = $t->stop;
ok(defined $took && $took < 1, sprintf('quit with a hanging upstream '
   . 'request took %.2f s', $took // -1));

# and stop (TERM) likewise: the upstream still hangs, so the first
# refresh of a new start does too

$t->run;

ok($t->wait_for(sub { $t->workers_connected_to($up->port) }, 5),
   'restarted: a request is in flight');

$took = $t->stop('TERM');
ok(defined $took && $took < 1, sprintf('stop with a hanging upstream '
   . 'request took %.2f s', $took // -1));

$t->check_log;
$t->cleanup;

done_testing;
