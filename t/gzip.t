#!/usr/bin/perl

# The compressed list (CONTRACT section 4.3): stockprice NAME gzip=on.
#
# - A client whose Accept-Encoding admits gzip (as nginx's gzip_static
#   decides it: q values, gzip_http_version, gzip_proxied, gzip_disable)
#   gets the full list compressed: Content-Encoding: gzip, its own strong
#   ETag ("...-gz"), the Last-Modified of the data; every other client the
#   identity list; both carry one Vary: Accept-Encoding.  ?symbols=, a
#   symbol's history and the event stream stay uncompressed.
# - HEAD and 304 as gzip_static gives them for a .gz of the same bytes;
#   the ETag of one encoding never gets a 304 for the other.
# - With nginx's gzip filter on too, the list is compressed once (the
#   module's copy, one Content-Encoding, one Vary, also with gzip_vary on).
# - After every refresh (2,000 symbols, a list of several compression
#   slices, once a second, two workers, sendfile on and off), the body
#   decompressed is the identity body of the same ETag, byte for byte.
# - The compressed copy lives in the zone: a reload keeps it; a zone
#   sized by the README's rule with gzip=on takes every refresh compressed.
# - gzip=maybe fails nginx -t with the parameter and file:line.

use strict;
use warnings;

use IO::Socket::INET;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use StockTest;

my $json = JSON::PP->new;

###############################################################################

my $t = StockTest->new;

# gzip_static's files are read by the workers (nobody)

chmod 0755, $t->dir;
mkdir $t->dir . '/html', 0755;
mkdir $t->dir . '/html/static', 0755;

# zone "big": 2,000 symbols, a refresh a second, history 2: by the rule
# 40960 + 2000 * (140 + 550 * (2 + 1)) = 3.6 MB; "fixed" never refreshes
# after its first

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 256; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_0%%/feed/prices zone=big:4m
                    interval=1s history=2;

    stockprice_poll http://127.0.0.1:%%PORT_0%%/feed3/prices zone=fixed:1m
                    interval=1h;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        add_header X-Pid $pid always;

        location /feed/ { stockprice_demo_feed count=2000; }
        location /feed3/ { stockprice_demo_feed count=300; }

        location /api/StockPrice { stockprice big gzip=on; }

        location /sf/api/StockPrice {
            sendfile on;
            stockprice big gzip=on;
        }

        location /both/api/StockPrice {
            gzip on;
            gzip_types application/json;
            gzip_min_length 20;
            gzip_vary on;
            stockprice big gzip=on;
        }

        location /off/api/StockPrice { stockprice big; }

        location /fixed/api/StockPrice { stockprice fixed gzip=on; }

        location /fixedsf/api/StockPrice {
            sendfile on;
            stockprice fixed gzip=on;
        }

        location /disable/api/StockPrice {
            gzip_disable "GzipHater";
            stockprice fixed gzip=on;
        }

        location /proxied/api/StockPrice {
            gzip_proxied any;
            stockprice fixed gzip=on;
        }

        location /nostream/api/StockPrice {
            stockprice fixed stream=off gzip=on;
        }

        location /static/ {
            root %%TESTDIR%%/html;
            gzip_static on;
            etag on;
        }

        location = /status { stockprice_status big; }
        location = /fixed/status { stockprice_status fixed; }
    }
}
EOF

$t->run;

ok($t->wait_status('refreshes', 1, 10, '/fixed/status'),
   'fixed: first refresh');
ok($t->wait_status('refreshes', 1, 10), 'big: first refresh');

my $GZ = { 'Accept-Encoding' => 'gzip' };

sub one {
    my ($v) = @_;

    return ref $v ? join(', ', @$v) : $v;
}

sub count_of {
    my ($v) = @_;

    return ref $v ? scalar @$v : defined $v ? 1 : 0;
}

sub gunzipped {
    my ($bytes) = @_;

    my $out;
    gunzip(\$bytes => \$out, Strict => 1) or return undef;

    return $out;
}

# the ETag of the compressed list for the identity list's ETag

sub gz_etag {
    my ($etag) = @_;

    (my $g = $etag) =~ s/"$/-gz"/;

    return $g;
}

# a request on a connection of its own, raw: (status, headers, body) with
# header names lowercased; for HTTP/1.0 and event streams (read until
# $until matches or 3 s pass, then closed)

sub raw {
    my ($request, $until) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port(0),
                                  Timeout => 5)
        or die "connect: $!";

    print $s $request;

    my $buf = '';
    my $end = time + 3 * ($ENV{TEST_VALGRIND} ? 20 : 1);

    $s->blocking(0);

    while (time < $end) {
        my $n = sysread($s, $buf, 65536, length $buf);
        last if defined $n && $n == 0;
        last if defined $until && $buf =~ $until;
        sleep 0.02 unless $n;
    }

    close $s;

    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    my %h;

    for (split /\r\n/, $head // '') {
        push @{ $h{lc $1} }, $2 if /^([^:]+):\s*(.*)$/;
    }

    return ($status // 0, \%h, $body // '');
}

###############################################################################

# 1. the two encodings of one generation (zone "fixed")

my $id = $t->get('/fixed/api/StockPrice');
my $gz = $t->get('/fixed/api/StockPrice', %$GZ);
my $list = $id->{content};
my $etag = $id->{headers}{etag} // '';

is($id->{status}, 200, 'identity: 200');
is($id->{headers}{'content-encoding'}, undef,
   'identity: no Content-Encoding');
is(one($id->{headers}{vary}), 'Accept-Encoding',
   'identity: Vary: Accept-Encoding, once');
is(scalar @{ $json->decode($list) }, 300, 'identity: 300 records');

is($gz->{status}, 200, 'gzip: 200');
is(one($gz->{headers}{'content-encoding'}), 'gzip',
   'gzip: Content-Encoding: gzip, once');
is(one($gz->{headers}{vary}), 'Accept-Encoding',
   'gzip: Vary: Accept-Encoding, once');
like($gz->{headers}{'content-type'}, qr{^application/json},
     'gzip: the Content-Type of the list');
ok($etag =~ /^"[^"]+"$/, "identity: a strong ETag ($etag)");
is($gz->{headers}{etag}, gz_etag($etag),
   'gzip: its own strong ETag, the identity one with -gz');
is($gz->{headers}{'last-modified'}, $id->{headers}{'last-modified'},
   'gzip: the Last-Modified of the data');
is($gz->{headers}{'cache-control'}, $id->{headers}{'cache-control'},
   'gzip: the Cache-Control of the list');
is($gz->{headers}{'content-length'}, length $gz->{content},
   'gzip: Content-Length is the compressed length');
ok(length $gz->{content} < length($list) / 3,
   'gzip: compressed to less than a third ('
   . length($gz->{content}) . ' of ' . length($list) . ' bytes)');
is(gunzipped($gz->{content}), $list,
   'gzip: decompressed, the identity list byte for byte');

my $sf = $t->get('/fixedsf/api/StockPrice', %$GZ);

is($sf->{headers}{etag}, $gz->{headers}{etag}, 'sendfile on: the same ETag');
ok($sf->{content} eq $gz->{content},
   'sendfile on: the same compressed bytes (from the memfd)');

# Accept-Encoding as nginx reads it

for my $case (['gzip', 1], ['deflate, gzip', 1], ['gzip;q=0.5, br', 1],
              ['GZIP', 1], ['gzip;q=0', 0], ['deflate, br', 0],
              ['identity', 0])
{
    my ($ae, $yes) = @$case;
    my $r = $t->get('/fixed/api/StockPrice', 'Accept-Encoding' => $ae);

    is($r->{headers}{'content-encoding'}, $yes ? 'gzip' : undef,
       "Accept-Encoding: $ae: " . ($yes ? 'gzip' : 'identity'));
    ok($yes ? $r->{content} eq $gz->{content} : $r->{content} eq $list,
       "Accept-Encoding: $ae: the body of its encoding");
    is(one($r->{headers}{vary}), 'Accept-Encoding',
       "Accept-Encoding: $ae: Vary");
}

# gzip_static's own rules: HTTP/1.0 (gzip_http_version 1.1), a proxied
# request (gzip_proxied off, and any), gzip_disable

my ($st, $h, $body) = raw("GET /fixed/api/StockPrice HTTP/1.0\r\n"
                          . "Accept-Encoding: gzip\r\n\r\n");

is($st, 200, 'HTTP/1.0: 200');
is($h->{'content-encoding'}, undef, 'HTTP/1.0: identity (gzip_http_version)');
is($body, $list, 'HTTP/1.0: the identity list');

my $r = $t->get('/fixed/api/StockPrice', %$GZ, Via => '1.1 proxy');
is($r->{headers}{'content-encoding'}, undef,
   'Via, gzip_proxied off: identity');

$r = $t->get('/proxied/api/StockPrice', %$GZ, Via => '1.1 proxy');
is($r->{headers}{'content-encoding'}, 'gzip', 'Via, gzip_proxied any: gzip');

$r = $t->get('/disable/api/StockPrice', %$GZ, 'User-Agent' => 'GzipHater/1');
is($r->{headers}{'content-encoding'}, undef, 'gzip_disable: identity');
is(one($r->{headers}{vary}), 'Accept-Encoding', 'gzip_disable: Vary');

$r = $t->get('/disable/api/StockPrice', %$GZ, 'User-Agent' => 'Other/1');
is($r->{headers}{'content-encoding'}, 'gzip', 'gzip_disable, other agent: gzip');

# what stays uncompressed: ?symbols=, a symbol's history, the event stream

for my $case (['?symbols=', '/fixed/api/StockPrice?symbols=S001,S002'],
              ['history', '/fixed/api/StockPrice/S001'])
{
    my ($what, $url) = @$case;

    $r = $t->get($url, %$GZ);
    is($r->{status}, 200, "$what: 200");
    is($r->{headers}{'content-encoding'}, undef, "$what: not compressed");
    ok(defined $t->json_decode($r->{content}), "$what: JSON");
}

($st, $h, $body) = raw("GET /fixed/api/StockPrice HTTP/1.1\r\n"
                       . "Host: test\r\n"
                       . "Accept: text/event-stream\r\n"
                       . "Accept-Encoding: gzip\r\n\r\n", qr/\n\n/);

is($st, 200, 'event stream with Accept-Encoding gzip: 200');
like(one($h->{'content-type'}), qr{^text/event-stream},
     'event stream: text/event-stream');
is($h->{'content-encoding'}, undef, 'event stream: not compressed');
like($body, qr/event: prices\r?\nid: \Q$etag\E\r?\ndata: \[/,
     'event stream: the first event, plain, id the identity ETag');

$r = $t->get('/nostream/api/StockPrice', %$GZ, Accept => 'text/event-stream');
is($r->{headers}{'content-encoding'}, 'gzip',
   'stream=off, Accept text/event-stream: the compressed list');

###############################################################################

# 2. HEAD and 304, side by side with gzip_static serving the same bytes

$t->write_file('html/static/list.json', $list);
$t->write_file('html/static/list.json.gz', $gz->{content});

my %ours = (url => '/fixed/api/StockPrice', etag => $gz->{headers}{etag},
            lm => $gz->{headers}{'last-modified'});

my $s = $t->get('/static/list.json', %$GZ);

is($s->{headers}{'content-encoding'}, 'gzip', 'gzip_static: serves the .gz');

my %static = (url => '/static/list.json', etag => $s->{headers}{etag},
              lm => $s->{headers}{'last-modified'});

# status, Content-Encoding, Content-Length, ETag, body length

sub shape {
    my ($method, $o, %h) = @_;

    my $r = $t->http($method, $o->{url}, headers => { %$GZ, %h });

    return join ' ', $r->{status},
        'ce=' . (one($r->{headers}{'content-encoding'}) // '-'),
        'cl=' . (one($r->{headers}{'content-length'}) // '-'),
        'etag=' . (($r->{headers}{etag} // '-') eq ($o->{etag} // '')
                   ? 'own' : $r->{headers}{etag} // '-'),
        'body=' . length($r->{content} // '');
}

for my $case (['GET', sub { () }],
              ['HEAD', sub { () }],
              ['GET If-None-Match', sub { ('If-None-Match' => $_[0]{etag}) }],
              ['HEAD If-None-Match', sub { ('If-None-Match' => $_[0]{etag}) }],
              ['GET If-None-Match W/', sub {
                  ('If-None-Match' => "W/$_[0]{etag}") }],
              ['GET If-None-Match list', sub {
                  ('If-None-Match' => "\"x-1\", $_[0]{etag}") }],
              ['GET If-None-Match other', sub {
                  ('If-None-Match' => '"x-1"') }],
              ['GET If-Modified-Since', sub {
                  ('If-Modified-Since' => $_[0]{lm}) }],
              ['GET If-Modified-Since old', sub {
                  ('If-Modified-Since' => 'Thu, 01 Jan 1970 00:00:01 GMT') }])
{
    my ($what, $hdr) = @$case;
    my ($method) = $what =~ /^(\S+)/;

    my $a = shape($method, \%ours, $hdr->(\%ours));
    my $b = shape($method, \%static, $hdr->(\%static));

    is($a, $b, "$what: as gzip_static ($b)");
}

# the ETag of one encoding is not the other's

$r = $t->get('/fixed/api/StockPrice', %$GZ, 'If-None-Match' => $etag);
is($r->{status}, 200, 'gzip, If-None-Match the identity ETag: 200');
is($r->{headers}{'content-encoding'}, 'gzip', 'gzip: and compressed');

$r = $t->get('/fixed/api/StockPrice', 'If-None-Match' => $gz->{headers}{etag});
is($r->{status}, 200, 'identity, If-None-Match the gzip ETag: 200');
is($r->{content}, $list, 'identity: and the list');

$r = $t->get('/fixed/api/StockPrice', %$GZ,
             'If-None-Match' => $gz->{headers}{etag});
is($r->{status}, 304, 'gzip, If-None-Match its ETag: 304');
is($r->{headers}{etag}, $gz->{headers}{etag}, '304 carries the gzip ETag');
is(one($r->{headers}{vary}), 'Accept-Encoding', '304 carries Vary');

$r = $t->get('/fixed/api/StockPrice', 'If-None-Match' => $etag);
is($r->{status}, 304, 'identity, If-None-Match its ETag: 304');
is($r->{headers}{etag}, $etag, '304 carries the identity ETag');

###############################################################################

# 3. after every refresh (zone "big"): the decompressed body is the
# identity body of the same ETag, in both workers, sendfile on and off,
# and with nginx's gzip filter on

my (%gens, %bad, %seen_pid);
my %checked = map { $_ => 0 } ('', '/sf', '/both');
my $end = time + 30 * ($ENV{TEST_VALGRIND} ? 4 : 1);

for my $i (1 .. 200) {
    last if time > $end || keys %gens >= 6;

    sleep 0.1;

    for my $p (sort keys %checked) {
        my $g = $t->get("$p/api/StockPrice", %$GZ);
        my $i = $t->get("$p/api/StockPrice");

        next unless $g->{status} == 200 && $i->{status} == 200;

        my $ie = $i->{headers}{etag} // '';

        # a refresh in between: the next pair
        next unless ($g->{headers}{etag} // '') eq gz_etag($ie);

        $gens{$ie}++;
        $checked{$p}++;
        $seen_pid{$g->{headers}{'x-pid'} // '?'}++;

        my $plain = gunzipped($g->{content});

        push @{ $bad{$p} }, "$ie: does not gunzip ($GunzipError)"
            unless defined $plain;
        push @{ $bad{$p} }, "$ie: differs from the identity list"
            if defined $plain && $plain ne $i->{content};
        push @{ $bad{$p} }, "$ie: " . count_of($g->{headers}{vary})
                            . ' Vary, ' . count_of($g->{headers}
                                                   {'content-encoding'})
                            . ' Content-Encoding'
            if count_of($g->{headers}{vary}) != 1
               || count_of($g->{headers}{'content-encoding'}) != 1;
        push @{ $bad{$p} }, "$ie: identity with "
                            . count_of($i->{headers}{vary}) . ' Vary'
            if count_of($i->{headers}{vary}) != 1;
    }
}

ok(keys %gens >= 6, 'six generations or more compared ('
   . scalar(keys %gens) . ')');

for my $p (sort keys %checked) {
    my $what = $p || '/';

    ok($checked{$p} >= 3, "$what: pairs of one generation compared "
       . "($checked{$p})");
    is(join('; ', @{ $bad{$p} // [] }), '',
       "$what: each decompressed list is the identity list of its ETag, "
       . 'one Vary on each, one Content-Encoding');
}

is(join(',', grep { !/^\d+$/ } keys %seen_pid), '', 'X-Pid on every answer');
is(scalar keys %seen_pid, 2, 'both workers answered');

is(scalar @{ $json->decode($t->get('/api/StockPrice')->{content}) }, 2000,
   'big: 2,000 records');

# gzip_vary on: one Vary on 304s too

for my $enc ('gzip', 'identity') {
    my %ae = $enc eq 'gzip' ? %$GZ : ();

    for (1 .. 10) {
        my $g = $t->get('/both/api/StockPrice', %ae);
        $r = $t->get('/both/api/StockPrice', %ae,
                     'If-None-Match' => $g->{headers}{etag} // '');
        last if $r->{status} == 304;
    }

    is($r->{status}, 304, "gzip_vary on, $enc: 304");
    is(count_of($r->{headers}{vary}), 1, "gzip_vary on, $enc: 304, one Vary");
}

# gzip=off next to it: no Vary, never the module's compressed copy

$r = $t->get('/off/api/StockPrice', %$GZ);
is($r->{headers}{'content-encoding'}, undef, 'gzip=off: identity');
is($r->{headers}{vary}, undef, 'gzip=off: no Vary');

###############################################################################

# 4. a reload keeps the compressed copy (it lives in the zone)

my $before = $t->get('/fixed/api/StockPrice', %$GZ);

ok($t->reload(1), 'reload: new workers');

my $after = $t->get('/fixed/api/StockPrice', %$GZ);

is($after->{headers}{etag}, $before->{headers}{etag},
   'reload: the same gzip ETag');
ok($after->{content} eq $before->{content}, 'reload: the same bytes');
is(one($after->{headers}{'content-encoding'}), 'gzip', 'reload: gzip');

$t->done;

###############################################################################

# 5. a zone of the README's size rule with gzip=on ("one record more of
# history"): every refresh stored and compressed, never "too small"

{
    my $c = StockTest->new;

    # 500 symbols at history 3: 40960 + 500 * (140 + 550 * (3 + 1))

    my $bytes = 40960 + 500 * (140 + 550 * 4);

    $c->write_config(<<"EOF");
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_0%%/feed/prices
                    zone=rule:$bytes interval=200ms history=3;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /feed/ { stockprice_demo_feed count=500; }
        location /api/StockPrice { stockprice rule gzip=on; }
        location = /status { stockprice_status rule; }
    }
}
EOF

    $c->run;

    ok($c->wait_status('refreshes', 10, 20), 'rule-sized zone: 10 refreshes');

    my $st = $c->status;

    is($st->{failures}, 0, 'rule-sized zone: no failure');
    is($st->{records}, 500 * 3, 'rule-sized zone: the whole history kept');

    my ($ok, $why) = (0, '');

    for (1 .. 20) {
        my $g = $c->get('/api/StockPrice', %$GZ);
        my $i = $c->get('/api/StockPrice');

        next unless ($g->{headers}{etag} // '') eq gz_etag($i->{headers}{etag}
                                                           // '');

        $ok = ($g->{headers}{'content-encoding'} // '') eq 'gzip'
              && (gunzipped($g->{content}) // '') eq $i->{content};
        $why = 'not compressed' unless $ok;
        last;
    }

    ok($ok, "rule-sized zone: the list compressed $why");
    unlike($c->read_file('error.log'), qr/too small|no memory/,
           'rule-sized zone: never too small');

    $c->done;
}

###############################################################################

# 6. configuration

{
    my $c = StockTest->new;

    $c->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
events { }
http {
    %%TEMPS%%
    stockprice_poll http://127.0.0.1:1/prices zone=z:1m;
    server {
        listen 127.0.0.1:%%PORT_0%%;
        location /a {
            stockprice z gzip=maybe;
        }
    }
}
EOF

    my ($rc, $out) = $c->test_config;

    isnt($rc, 0, 'gzip=maybe: nginx -t fails');
    my @lines = split /\n/, $c->read_file('nginx.conf');
    my ($line) = grep { $lines[$_ - 1] =~ /gzip=maybe/ } 1 .. @lines;

    like($out, qr/"gzip=maybe" in \S+nginx\.conf:$line\b/,
         'gzip=maybe: says what, where');
}

done_testing;
