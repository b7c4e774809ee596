#!/usr/bin/perl

# The record shape and the client API table (CONTRACT section 4).

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

# the first answer is a failure, so that "before the first refresh" can be
# seen
$up->control({ mode => 'status', status => 503 });

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=300ms timeout=2s history=3
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF

$t->run;

my $json = JSON::PP->new;

ok($t->wait_status('failures', 1), 'first refresh failed');

my $r = $t->get('/api/StockPrice');
is($r->{status}, 200, 'list before first refresh: 200');
is($r->{content}, '[]', 'list before first refresh: []');

# CONTRACT 4.1: every 200 carries ETag and Last-Modified, this one too (the
# zone's "[]" since it was made); the first data's is not older

my $lm0 = $r->{headers}{'last-modified'} // '';
like($lm0, qr/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/,
     "list before first refresh: Last-Modified ($lm0)");
ok(defined $r->{headers}{etag}, 'list before first refresh: ETag');
is($t->get('/api/StockPrice', 'If-Modified-Since' => $lm0)->{status}, 304,
   'list before first refresh: If-Modified-Since its Last-Modified, 304');

$up->control({
    records => [
        { symbol => 'BRK.B', price => '187.30' },
        { symbol => 'Q"x\\y', price => 0.1 },
        { symbol => 'FOURTEEN', price => 14.7 },
        { symbol => '', price => 1 },
        { symbol => 'NOPRICE' },
        { symbol => 'BADPRICE', price => 'abc' },
        { symbol => 'X' x 33, price => 1 },
        { symbol => 'IDS', price => 2,
          id => 'ffc2f36f-dd0c-4782-bb3f-2c931846f2a3' },
        { symbol => 'BADID', price => 3, id => 'not-a-uuid' },
        'not an object',
    ],
});

ok($t->wait_status('refreshes', 3), 'three refreshes');

# record shape

$r = $t->get('/api/StockPrice');
my $list = eval { $json->decode($r->{content}) };

is(ref $list, 'ARRAY', 'list is a JSON array');
is($r->{headers}{'content-type'}, 'application/json', 'content type');
is($r->{headers}{'cache-control'}, 'no-cache', 'cache-control no-cache');
like($r->{headers}{etag} // '', qr/^"[^"]+"$/, 'strong etag');
ok($r->{headers}{'last-modified'}, 'last-modified');

my @syms = map { $_->{symbol} } @$list;
is_deeply(\@syms, [sort @syms], 'list sorted by symbol in byte order');
is_deeply(\@syms, ['AAPL', 'BADID', 'BRK.B', 'FOURTEEN', 'IDS', 'MSFT',
                   'Q"x\\y', 'SAP'], 'bad records skipped, good ones kept');

my ($msft) = grep { $_->{symbol} eq 'MSFT' } @$list;
is_deeply([sort keys %$msft],
          [qw(id measurementTimeStamp price symbol valueDateTime)],
          'record has exactly the contract fields');
like($msft->{id},
     qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
     'made-up id is a version 4 uuid');
like($msft->{measurementTimeStamp},
     qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/,
     'measurementTimeStamp is ISO-8601 UTC with fraction');
is($msft->{valueDateTime}, '2024-05-01T10:53:37.2982063Z',
   'valueDateTime kept verbatim');
ok(!ref $msft->{price} && $msft->{price} =~ /^[\d.]+$/, 'price is a number');

my %mt = map { $_->{measurementTimeStamp} => 1 } @$list;
is(scalar keys %mt, 1, 'one measurementTimeStamp per refresh');

my ($ids) = grep { $_->{symbol} eq 'IDS' } @$list;
is($ids->{id}, 'ffc2f36f-dd0c-4782-bb3f-2c931846f2a3', 'upstream uuid kept');
my ($badid) = grep { $_->{symbol} eq 'BADID' } @$list;
isnt($badid->{id}, 'not-a-uuid', 'invalid upstream id replaced');

my ($brk) = grep { $_->{symbol} eq 'BRK.B' } @$list;
is($brk->{valueDateTime}, $brk->{measurementTimeStamp},
   'missing valueDateTime is the measurement time');

like($r->{content}, qr/"price":187\.3[,}]/, 'numeric string price as number');
like($r->{content}, qr/"symbol":"FOURTEEN","price":14\.7,/,
     '14.7 stays 14.7');
like($r->{content}, qr/"price":0\.1,/, '0.1 stays 0.1');
like($r->{content}, qr/"symbol":"Q\\"x\\\\y"/, 'symbol escaped');

my $st = $t->status;
ok($st->{skippedRecords} >= 5, 'skipped records counted');

# filter

$r = $t->get('/api/StockPrice?symbols=SAP,MSFT,NOPE,SAP');
is_deeply([map { $_->{symbol} } @{ $json->decode($r->{content}) }],
          ['MSFT', 'SAP'], '?symbols= filter, sorted, unknown left out');

$r = $t->get('/api/StockPrice?symbols=Q%22x%5Cy');
is_deeply([map { $_->{symbol} } @{ $json->decode($r->{content}) }],
          ['Q"x\\y'], '?symbols= is percent-decoded');

# history

$r = $t->get('/api/StockPrice/MSFT');
is($r->{status}, 200, 'symbol history 200');
my $h = $json->decode($r->{content});
is(scalar @$h, 3, 'history=3 keeps three records');
my %hid = map { $_->{id} => 1 } @$h;
is(scalar keys %hid, 3, 'history records have distinct ids');
ok($h->[0]{measurementTimeStamp} gt $h->[1]{measurementTimeStamp}
   && $h->[1]{measurementTimeStamp} gt $h->[2]{measurementTimeStamp},
   'history newest first');

$r = $t->get('/api/StockPrice/BRK%2EB');
is($r->{status}, 200, 'percent-encoded symbol found');
is($json->decode($r->{content})->[0]{symbol}, 'BRK.B', 'decoded symbol');

$r = $t->get('/api/StockPrice/NOPE');
is($r->{status}, 404, 'unknown symbol 404');
like($json->decode($r->{content})->{error} // '', qr/unknown symbol/,
     'unknown symbol JSON error body');

$r = $t->get('/api/StockPriceX');
is($r->{status}, 404, 'other URI under the prefix 404');

# HEAD

for my $u ('/api/StockPrice', '/api/StockPrice/MSFT', '/api/StockPrice/NOPE')
{
    # no refresh in between: same data for both requests
    $up->control({ mode => 'status', status => 500 })
        if $u eq '/api/StockPrice';
    $t->wait_status('consecutiveFailures', 1);

    my $g = $t->get($u);
    my $hd = $t->http('HEAD', $u);
    is($hd->{status}, $g->{status}, "HEAD $u same status");
    is($hd->{headers}{'content-length'}, length $g->{content},
       "HEAD $u same content-length");
    is($hd->{content} // '', '', "HEAD $u no body");
}

# other methods

for my $m (qw(POST PUT DELETE PATCH)) {
    $r = $t->http($m, '/api/StockPrice', content => 'x');
    is($r->{status}, 405, "$m 405");
    is($r->{headers}{allow}, 'GET, HEAD', "$m Allow header");
    ok(eval { $json->decode($r->{content})->{error} }, "$m JSON error body");
}

# ETag, If-None-Match

$r = $t->get('/api/StockPrice');
my $etag = $r->{headers}{etag};

$r = $t->get('/api/StockPrice', 'If-None-Match' => $etag);
is($r->{status}, 304, 'If-None-Match current etag 304');

$r = $t->get('/api/StockPrice/MSFT', 'If-None-Match' => $etag);
is($r->{status}, 304, 'If-None-Match on a symbol 304');

$r = $t->get('/api/StockPrice', 'If-None-Match' => qq{"nope", $etag});
is($r->{status}, 304, 'If-None-Match list containing the etag 304');

$r = $t->get('/api/StockPrice', 'If-None-Match' => "W/$etag");
is($r->{status}, 304, 'If-None-Match weak form of the etag 304');

$r = $t->get('/api/StockPrice', 'If-None-Match' => '*');
is($r->{status}, 304, 'If-None-Match * 304');

$r = $t->get('/api/StockPrice', 'If-None-Match' => '"nope"');
is($r->{status}, 200, 'If-None-Match other etag 200');
my $full = $t->get('/api/StockPrice')->{content};
is($r->{content}, $full, 'If-None-Match other etag: full body');

$r = $t->get('/api/StockPrice', 'If-None-Match' => $etag,
             'If-Modified-Since' => 'Thu, 01 Jan 1970 00:00:01 GMT');
is($r->{status}, 200, 'If-None-Match with an old If-Modified-Since 200');
is($r->{content}, $full, 'If-None-Match with If-Modified-Since: full body');

$r = $t->get('/api/StockPrice?symbols=MSFT', 'If-None-Match' => $etag);
is($r->{status}, 304, 'If-None-Match on a filtered list 304');

$up->control({});
my $refreshes = $t->status->{refreshes};
ok($t->wait_status('refreshes', $refreshes + 1), 'refreshed again');

$r = $t->get('/api/StockPrice', 'If-None-Match' => $etag);
is($r->{status}, 200, 'old etag after a refresh 200');
isnt($r->{headers}{etag}, $etag, 'etag changed with the data');

# numbers and symbols exactly as the upstream wrote them

my $literal = <<'JSON';
[
 {"symbol":"N1","price":14.7052516685914},
 {"symbol":"N2","price":0.30000000000000004},
 {"symbol":"N3","price":100},
 {"symbol":"N4","price":-2.5e-7},
 {"symbol":"N5","price":1.7976931348623157e308},
 {"symbol":"N6","price":"187.30"},
 {"symbol":"INF","price":1e999},
 {"symbol":"INFS","price":"inf"},
 {"symbol":"NANS","price":"NaN"},
 {"symbol":"NUL\u0000X","price":1},
 {"symbol":"TAB\tX","price":1},
 {"symbol":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","price":1},
 {"symbol":"lower","price":1},
 {"symbol":"\u00c4\u00d6","price":1}
]
JSON

$st = $t->status;
$up->control({ mode => 'body', body => $literal });
ok($t->wait_status('refreshes', $st->{refreshes} + 1), 'literal refresh');

$r = $t->get('/api/StockPrice');
my $raw = $r->{content};
$list = JSON::PP->new->utf8->decode($raw);
my %by = map { $_->{symbol} => $_ } @$list;

like($raw, qr/"price":14\.7052516685914[,}]/, '14.7052516685914 kept');
like($raw, qr/"price":0\.30000000000000004[,}]/,
     '0.30000000000000004 kept (17 digits)');
like($raw, qr/"symbol":"N3","price":100[,}]/, '100 stays 100');
is($by{N4}{price}, -2.5e-7, '-2.5e-7 reads back the same');
like($raw, qr/"symbol":"N4","price":-(2\.5e-0*7|0\.00000025)[,}]/,
     '-2.5e-7 with the fewest digits');
is($by{N5}{price}, 1.7976931348623157e308, 'largest double reads back');
like($raw, qr/"symbol":"N6","price":187\.3[,}]/, '"187.30" is 187.3');

ok(!(grep { $by{$_} } qw(INF INFS NANS)), 'non-finite prices skipped');
ok(!(grep { /^NUL|^TAB/ } keys %by),
   'symbols with control characters skipped, not cut short');
ok($by{'A' x 32}, 'a 32-byte symbol is kept');
ok($by{"\x{c4}\x{d6}"}, 'a UTF-8 symbol is kept');

@syms = map { $_->{symbol} } @$list;
my @bytes = map { my $b = $_; utf8::encode($b); $b } @syms;
is_deeply(\@bytes, [sort @bytes], 'sorted in byte order');
ok($bytes[-1] eq "\xc3\x84\xc3\x96" && $bytes[-2] eq 'lower',
   'lowercase and UTF-8 after uppercase');

$r = $t->get('/api/StockPrice/%C3%84%C3%96');
is($r->{status}, 200, 'percent-encoded UTF-8 symbol found');

$up->control({});

$t->done;

done_testing;
