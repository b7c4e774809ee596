#!/usr/bin/perl

# The start and execute phases: authenticate once, then refresh every
# interval; what the module sends upstream; re-auth once on 401.

use strict;
use warnings;

use Test::More;
use JSON::PP;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_file('credentials', $up->credentials);
$up->control({ symbols => [qw(MSFT AAPL SAP IBM)] });

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=200ms timeout=2s symbols=MSFT,AAPL,SAP
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices?region=eu
                    zone=eu:64k interval=200ms symbols=SAP
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location /eu/StockPrice { stockprice eu; }
        location = /status { stockprice_status stocks; }
    }
}
EOF

$t->run;

my $json = JSON::PP->new;

ok($t->wait_status('refreshes', 1), 'first refresh');
my $first = $t->get_json('/api/StockPrice');

ok($t->wait_status('refreshes', 7), 'seven refreshes');
my $later = $t->get_json('/api/StockPrice');

my %p1 = map { $_->{symbol} => $_->{price} } @$first;
my %p2 = map { $_->{symbol} => $_->{price} } @$later;

is_deeply([sort keys %p2], [qw(AAPL MSFT SAP)],
          'symbols= drops the symbols not asked for');
ok((grep { $p1{$_} != $p2{$_} } keys %p2), 'prices change across refreshes');

my $st = $up->stats;
is($t->status->{authCalls}, 1, 'zone "stocks" authenticated once');
is($st->{auth}, 2, 'auth called once per zone over many refreshes');

my @prices = grep { $_->{path} eq '/prices' && $_->{query} !~ /region/ }
             @{ $st->{requests} };
my $req = $prices[-1];

is($req->{method}, 'GET', 'prices request is a GET');
is($req->{query}, 'symbols=MSFT,AAPL,SAP', '?symbols= sent upstream')
    or diag explain $req;
like($req->{headers}{authorization} // '', qr/^Bearer tok-\d+-\d+$/,
     'bearer token sent');
is($req->{headers}{accept}, 'application/json', 'Accept: application/json');
like($req->{headers}{'user-agent'} // '', qr{^ngx_stockprice/\d},
     'User-Agent names the module and its version');

my ($eu) = grep { $_->{query} =~ /region/ } reverse @{ $st->{requests} };
is($eu->{query}, 'region=eu&symbols=SAP', '&symbols= after an existing query');

my ($auth) = grep { $_->{path} eq '/auth' } @{ $st->{requests} };
is($auth->{method}, 'POST', 'auth is a POST');
is($auth->{headers}{'content-type'}, 'application/json',
   'auth Content-Type: application/json');
is_deeply($json->decode($auth->{body}),
          { username => 'alice', password => 'pa"ss:word' },
          'auth body is the JSON-escaped credentials');

# the upstream forgets its tokens: one re-auth, then the retry succeeds

my $before = $t->status;
my $upauth = $up->stats->{auth};

$up->control({ symbols => [qw(MSFT AAPL SAP)], reject => 1 });
ok($t->wait_for(sub { $up->stats->{auth} > $upauth }, 5),
   '401 on prices: authenticated again');
$up->control({ symbols => [qw(MSFT AAPL SAP)] });

ok($t->wait_status('refreshes', $t->status->{refreshes} + 2),
   'refreshes go on after re-auth');
is($t->status->{consecutiveFailures}, 0, 'no failure streak after re-auth');

$t->done;

done_testing;
