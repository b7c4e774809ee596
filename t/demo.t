#!/usr/bin/perl

# The built-in demo feed as the module's own upstream, with auth.

use strict;
use warnings;

use Test::More;
use JSON::PP;

use lib 't/lib';
use StockTest;

my $t = StockTest->new;

$t->write_file('credentials', "demo:secret\n");

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_0%%/demo/prices zone=stocks:1m
                    interval=200ms
                    auth=http://127.0.0.1:%%PORT_0%%/demo/auth
                    credentials=%%TESTDIR%%/credentials;

    stockprice_poll http://127.0.0.1:%%PORT_0%%/many/prices zone=many:8m
                    interval=1s max_size=4m;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
        location /demo/ {
            stockprice_demo_feed credentials=%%TESTDIR%%/credentials;
        }
        location /many/ { stockprice_demo_feed count=5000; }
        location /many/api/StockPrice { stockprice many; }
        location = /many/status { stockprice_status many; }
    }
}
EOF2

$t->run;

my $json = JSON::PP->new;

ok($t->wait_status('refreshes', 1), 'first refresh from the demo feed');
my $first = $t->get_json('/api/StockPrice');
is_deeply([map { $_->{symbol} } @$first], [qw(AAPL MSFT SAP)],
          'MSFT, AAPL and SAP served');

ok($t->wait_status('refreshes', 4), 'more refreshes');
my $later = $t->get_json('/api/StockPrice');
my %p1 = map { $_->{symbol} => $_->{price} } @$first;
ok((grep { $p1{$_->{symbol}} != $_->{price} } @$later),
   'prices change from one refresh to the next');
is($t->status->{authCalls}, 1, 'authenticated once');
is($t->status->{failures}, 0, 'no failures');

my $r = $t->get('/demo/prices');
is($r->{status}, 401, 'demo prices without a token: 401');

$r = $t->http('POST', '/demo/auth',
              content => '{"username":"demo","password":"wrong"}',
              headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 401, 'demo auth with a wrong password: 401');

$r = $t->http('POST', '/demo/auth',
              content => '{"username":"demo","password":"secret"}',
              headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 200, 'demo auth with the right password: 200');
my $tok = eval { $json->decode($r->{content})->{token} };
ok($tok, 'demo auth issues a token');
is(eval { $json->decode($r->{content})->{expiresIn} }, 3600, 'expiresIn');

$r = $t->http('GET', '/demo/prices?symbols=SAP',
              headers => { Authorization => "Bearer $tok" });
is($r->{status}, 200, 'demo prices with the token: 200');
is_deeply([map { $_->{symbol} } @{ $json->decode($r->{content}) }], ['SAP'],
          'demo prices honour ?symbols=');

$r = $t->http('GET', '/demo/prices',
              headers => { Authorization => 'Bearer 7fffffff.00' });
is($r->{status}, 401, 'demo prices with a forged token: 401');

# count=5000: S0001..S5000, byte order numeric, to the module too

$r = $t->get('/many/prices');
my $many = eval { $json->decode($r->{content}) } // [];
is(scalar @$many, 5000, 'count=5000: 5000 records');
my @names = map { $_->{symbol} } @$many;
is_deeply(\@names, [map { sprintf 'S%04d', $_ } 1 .. 5000],
          'count=5000: S0001 to S5000, in order');
ok(!(grep { $_->{price} !~ /^\d+(\.\d{1,4})?$/ } @$many),
   'prices quoted with at most 4 decimals');

ok($t->wait_status('symbols', 5000, 10, '/many/status'),
   'a zone polling it holds 5000 symbols');
is(scalar @{ $t->get_json('/many/api/StockPrice') // [] }, 5000,
   'and serves 5000 records');

$t->done;

done_testing;
