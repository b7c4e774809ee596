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

select undef, undef, undef, 0.5;

my $after = $up->stats;
is($after->{auth}, $stats->{auth}, 'no auth call caused by the reload');
is($after->{prices}, $stats->{prices}, 'no refresh caused by the reload');
is($t->status->{authenticated}, JSON::PP::true, 'token kept across reload');

# quit while a prices request hangs: the next refresh is due at once after
# a change of the interval (a new, smaller zone starts a new schedule)

$up->control({ delay => 8 });

$t->write_config($t->read_file('nginx.conf') =~ s/zone=stocks:1m/zone=stocks:2m/r);
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

$t->check_log;
$t->cleanup;

done_testing;
