#!/usr/bin/perl

# proxy=URL (CONTRACT section 2): every upstream request through the
# forward proxy named, none through the environment's http_proxy; a proxy
# that is not there is a failed refresh with curl's reason; a proxy URL
# that is not http, https or socks5h fails nginx -t.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$up->control({ auth => 0 });

# a forward proxy for plain HTTP: nginx itself, logging what it passes on;
# the environment points at a port where nothing listens

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
env http_proxy=http://127.0.0.1:%%PORT_9%%;
env HTTP_PROXY=http://127.0.0.1:%%PORT_9%%;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=via:64k
                    interval=200ms timeout=2s
                    proxy=http://127.0.0.1:%%PORT_2%%;
    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices?direct=1
                    zone=direct:64k interval=200ms timeout=2s;
    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=dead:64k
                    interval=200ms timeout=2s
                    proxy=http://127.0.0.1:%%PORT_9%%;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location = /via { stockprice_status via; }
        location = /direct { stockprice_status direct; }
        location = /dead { stockprice_status dead; }
    }

    server {
        listen 127.0.0.1:%%PORT_2%%;
        access_log %%TESTDIR%%/proxy.log;

        location / { proxy_pass http://$http_host$request_uri; }
    }
}
EOF2

$t->run;

ok($t->wait_status('refreshes', 2, 10, '/via'), 'via the proxy: refreshes');
is($t->status('/via')->{failures}, 0, 'via the proxy: no failure');

my $log = $t->read_file('proxy.log');
ok($log =~ m{"GET http://127\.0\.0\.1:\d+/prices HTTP/1\.1" 200}
   || $log =~ m{"GET /prices HTTP/1\.1" 200},
   'the proxy passed the prices requests on');

ok($t->wait_status('refreshes', 2, 10, '/direct'),
   'without proxy=: refreshes, the environment\'s proxy ignored');
unlike($log, qr/direct=1/, 'without proxy=: nothing through the proxy');

ok($t->wait_status('failures', 1, 10, '/dead'), 'a proxy not there fails');
like($t->status('/dead')->{lastError} // '',
     qr/request failed: .*(?:connect|Connection refused)/i,
     "a proxy not there: curl's reason");

$t->done;

for my $case (
    [ 'proxy of another scheme', 'proxy=ftp://127.0.0.1:1',
      qr/invalid proxy "proxy=ftp:\/\/127\.0\.0\.1:1": must be http/ ],
    [ 'proxy without a host', 'proxy=http://',
      qr/invalid proxy "proxy=http:\/\/"/ ],
    [ 'proxy empty', 'proxy=', qr/invalid proxy "proxy="/ ],
)
{
    my ($name, $param, $re) = @$case;

    $t->config_fails($name, "stockprice_poll http://127.0.0.1:1/prices zone=s:64k $param;", $re);
}

is(do {
    $t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
events { }
http {
    stockprice_poll http://127.0.0.1:1/prices zone=s:64k
                    proxy=socks5h://127.0.0.1:1080;
}
EOF2
    ($t->test_config)[0];
}, 0, 'a socks5h proxy passes nginx -t');

done_testing;
