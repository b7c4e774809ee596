#!/usr/bin/perl

# The harness and the fake upstream themselves, with a plain nginx (no
# module): when these fail, the other files' failures say nothing about
# the module.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use JSON::PP;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

my $json = JSON::PP->new;

ok(-d $t->dir . '/logs', 'prefix has logs/');
is($t->port(0), $t->port(0), 'port(n) is stable');
isnt($t->port(0), $t->port(1), 'ports differ per index');

# the upstream, straight

my $r = $t->http('POST', $up->url('/auth'),
                 headers => { 'Content-Type' => 'application/json' },
                 content => $json->encode({ username => 'alice',
                                            password => 'pa"ss:word' }));
is($r->{status}, 200, 'upstream auth with the credentials: 200');
my $auth = $t->json_decode($r->{content});
like($auth->{token}, qr/^tok-1-/, 'upstream auth: token');
is($auth->{expiresIn}, 3600, 'upstream auth: expiresIn');

my %bearer = (Authorization => "Bearer $auth->{token}");

$r = $t->http('POST', $up->url('/auth'),
              headers => { 'Content-Type' => 'application/json' },
              content => '{"username":"alice","password":"nope"}');
is($r->{status}, 401, 'upstream auth with a wrong password: 401');

is($t->http_get($up->url('/prices'))->{status}, 401,
   'upstream prices without a token: 401');

$r = $t->http_get($up->url('/prices'), %bearer);
is($r->{status}, 200, 'upstream prices with the token: 200');
my $p1 = $t->json_decode($r->{content});
is_deeply([map { $_->{symbol} } @$p1], [qw(MSFT AAPL SAP)],
          'upstream serves MSFT, AAPL, SAP');

my $p2 = $t->json_decode($t->http_get($up->url('/prices'), %bearer)->{content});
ok((grep { $p1->[$_]{price} != $p2->[$_]{price} } 0 .. 2),
   'upstream prices change per request');

$r = $t->http_get($up->url('/prices?symbols=SAP,NOPE'), %bearer);
is_deeply([map { $_->{symbol} } @{ $t->json_decode($r->{content}) }],
          ['SAP'], 'upstream honours ?symbols=');

my $st = $up->stats;
is($st->{auth}, 2, 'stats: auth calls');
is($st->{prices}, 4, 'stats: prices calls');
is($st->{last_prices}{query}, 'symbols=SAP,NOPE', 'stats: last query');
is($st->{last_prices}{headers}{authorization}, "Bearer $auth->{token}",
   'stats: last headers');
like($st->{requests}[-1]{line}, qr{^GET /prices\?symbols=SAP,NOPE HTTP/1\.1$},
     'stats: request line');

# malformed input does not end it

for my $junk ("\r\n", "GARBAGE\r\n\r\n", "GET\r\n\r\n",
              "POST /auth HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
              "POST /auth HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
              "\x00\xff\xfe binary\r\n\r\n")
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $up->port,
                                  Timeout => 2) or next;
    print $s $junk;
    close $s;
}

is($t->http_get($up->url('/prices'), %bearer)->{status}, 200,
   'upstream still serves after malformed requests');

# modes

$up->control({ mode => 'status', status => 503 });
is($t->http_get($up->url('/prices'), %bearer)->{status}, 503, 'mode status');

$up->control({ mode => 'body', body => 'not json' });
is($t->http_get($up->url('/prices'), %bearer)->{content}, 'not json',
   'mode body');

$up->control({ mode => 'close' });
is($t->http_get($up->url('/prices'), %bearer)->{status}, 599,
   'mode close: no answer');

$up->control({ mode => '401' });
is($t->http_get($up->url('/prices'), %bearer)->{status}, 401, 'mode 401');

$up->control({});
is($t->http_get($up->url('/prices'), %bearer)->{status}, 401,
   'mode 401 forgot the tokens');

$r = $t->http('POST', $up->url('/auth'),
              headers => { 'Content-Type' => 'application/json' },
              content => '{"username":"alice","password":"pa\"ss:word"}');
%bearer = (Authorization => 'Bearer '
           . $t->json_decode($r->{content})->{token});

$up->control({ forget => 1 });
is($t->http_get($up->url('/prices'), %bearer)->{status}, 401,
   'forget: the old token is refused');

$up->control({ forget => 1, delay => 0.5, auth => 0 });
my $t0 = Time::HiRes::time();
$r = $t->http_get($up->url('/prices'));
ok($r->{status} == 200 && Time::HiRes::time() - $t0 >= 0.5,
   'delay, and auth => 0 needs no token');

# nginx: run, serve, reload, stop

$t->write_config(<<'EOF');
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    server {
        listen 127.0.0.1:%%PORT_0%%;
        location / { return 200 "hello"; }
    }
    server {
        listen 127.0.0.1:%%PORT_2%%;
        location / { return 204; }
    }
}
EOF

my ($rc, $out) = $t->test_config;
is($rc, 0, 'nginx -t of a good configuration') or diag $out;

$t->run;

ok($t->master_pid, 'master running');
is(scalar(my @w = $t->worker_pids), 2, 'two workers');
is($t->http_get('/')->{content}, 'hello', 'first server answers');
is($t->http_get('http://127.0.0.1:' . $t->port(2) . '/')->{status}, 204,
   'second server answers');

ok($t->reload(1), 'reload: new workers');
is($t->http_get('/')->{content}, 'hello', 'serving after reload');

my $took = $t->stop;
ok(defined $took && $took < 5, 'stop: master gone');

# nginx -t of a bad configuration

$t->write_config("events { }\nhttp {\n    bogus_directive on;\n}\n");
($rc, $out) = $t->test_config;
isnt($rc, 0, 'nginx -t of a bad configuration fails');
like($out, qr/unknown directive "bogus_directive" in \S+nginx\.conf:3/,
     'nginx -t output names file:line');

# valgrind reports: what fails a run under TEST_VALGRIND=1

my $vg = StockTest->new;

$vg->write_file('vg.100', <<'EOF2');
==100== 8 bytes in 1 blocks are definitely lost in loss record 1 of 2
==100==    at 0x48417B4: malloc (vg_replace_malloc.c:381)
==100==    by 0x12E404: ngx_set_environment (in /usr/sbin/nginx)
==100==
==100== Syscall param epoll_ctl(event) points to uninitialised byte(s)
==100==    at 0x4B2B1E: epoll_ctl (syscall-template.S:120)
==100==
EOF2

is(scalar $vg->valgrind_problems, 0,
   "valgrind: nginx's own leak and syscall notes pass");

$vg->write_file('vg.101', <<'EOF2');
==101== Invalid read of size 1
==101==    at 0x4849A0: ngx_http_stockprice_parse_prices (parse.c:10)
==101==
==101== 64 bytes in 1 blocks are definitely lost in loss record 2 of 3
==101==    at 0x48417B4: malloc (vg_replace_malloc.c:381)
==101==    by 0x4849B0: ngx_http_stockprice_fetch_init (fetch.c:20)
==101==
==101== 512 bytes in 1 blocks are still reachable in loss record 3 of 3
==101==    at 0x48417B4: malloc (vg_replace_malloc.c:381)
==101==    by 0x4A1000: curl_multi_init (multi.c:420)
==101==
==101== 1,024 bytes in 1 blocks are still reachable in loss record 1 of 3
==101==    at 0x48417B4: malloc (vg_replace_malloc.c:381)
==101==    by 0x154CFE: ngx_alloc (in /usr/sbin/nginx)
==101==
EOF2

my @p = $vg->valgrind_problems;
is(scalar @p, 3, 'valgrind: an invalid read, a leak from the module and a '
   . 'curl handle held at exit fail');
like($p[0] // '', qr/Invalid read/, 'valgrind: the invalid read reported');

$vg->cleanup;

$t->done;

done_testing;
