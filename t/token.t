#!/usr/bin/perl

# The token is renewed before expiresIn runs out, so that the upstream
# (which enforces expiresIn) never has to refuse it.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_file('credentials', $up->credentials);

# tokens live 2 s on the upstream side

$up->control({ expires => 2 });

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=200ms timeout=1s
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

ok($t->wait_for(sub { $up->stats->{auth} >= 3 }, 8),
   'authenticated again as tokens near their expiry');

my $st = $up->stats;
my @auth = grep { $_->{path} eq '/auth' } @{ $st->{requests} };
my @prices = grep { $_->{path} eq '/prices' } @{ $st->{requests} };

ok(@prices >= 2 * @auth, scalar(@prices) . ' prices requests for '
   . scalar(@auth) . ' tokens: tokens are reused until renewal');
is($st->{status}{401} // 0, 0, 'no prices request was refused');
is($t->status->{failures}, 0, 'no failed refresh');

$t->done;

done_testing;
