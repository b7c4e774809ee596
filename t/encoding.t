#!/usr/bin/perl

# Compressed upstream bodies (CONTRACT section 3.2): the prices request
# offers every encoding libcurl decodes (gzip, deflate, br and zstd with
# Debian's libcurl) and a compressed answer is decoded before it is
# parsed; max_size= holds for the decoded body, so that a small gzip that
# inflates to megabytes is a failed refresh, not megabytes of memory; a
# body that does not decode as its Content-Encoding says is a failed
# refresh; both keep the data and log one clear line.  The upstream is the
# test's own nginx: gzip_static (with no plain file beside the .gz, so an
# answer needs gzip offered), and static files sent with a
# Content-Encoding header.

use strict;
use warnings;

use Test::More;
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Compress::Deflate qw(deflate $DeflateError);

use lib 't/lib';
use StockTest;

my $t = StockTest->new;
my $d = $t->dir;

# the upstream's workers run as another user: through the prefix to www/

mkdir "$d/www" or die "mkdir $d/www: $!";
chmod 0711, $d;
chmod 0755, "$d/www";

sub put {
    my ($name, $body) = @_;

    $t->write_file("www/.$name.tmp", $body);
    rename "$d/www/.$name.tmp", "$d/www/$name" or die "rename $name: $!";
}

sub prices {
    my ($sym, $price) = @_;
    return qq([{"symbol":"$sym","price":$price,)
           . qq("valueDateTime":"2024-01-02T03:04:05Z"}]);
}

sub gz {
    my ($in) = @_;
    my $out;
    gzip(\$in => \$out) or die "gzip: $GzipError";
    return $out;
}

sub zlib {
    my ($in) = @_;
    my $out;
    deflate(\$in => \$out) or die "deflate: $DeflateError";
    return $out;
}

# zstd: the command line tool, when there is one (build.sh installs it)

my $zstd = `command -v zstd 2>/dev/null`;
chomp $zstd;

sub zst {
    my ($in) = @_;
    $t->write_file('plain.tmp', $in);
    system("$zstd -q -f -o $d/plain.zst $d/plain.tmp") == 0
        or die 'zstd failed';
    return $t->read_file('plain.zst');
}

# a good body, then one that inflates past max_size, or does not inflate

my $bomb = gz(' ' x (4 * 1024 * 1024) . '[]');

put('gzip.json.gz', gz(prices('GZ', 1.5)));
put('deflate.json', zlib(prices('DF', 2.5)));
put('zstd.json', zst(prices('ZS', 3.5))) if $zstd;
put('bomb.json', gz(prices('BM', 4.5)));
put('corrupt.json', gz(prices('CR', 5.5)));
put('plain.json', prices('PL', 6.5));

my @zones = ('gzip', 'deflate', ($zstd ? 'zstd' : ()), 'bomb', 'corrupt',
             'plain');

my $polls = join '', map {
    "    stockprice_poll http://127.0.0.1:%%PORT_2%%/$_.json zone=$_:64k\n"
    . "                    interval=200ms max_size=64k;\n"
} @zones;

my $locations = join '', map {
    "        location /api/$_ { stockprice $_; }\n"
    . "        location = /st/$_ { stockprice_status $_; }\n"
} @zones;

my $conf = <<'EOF';
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

%%POLLS%%
    log_format enc '$uri $http_accept_encoding';

    server {
        listen 127.0.0.1:%%PORT_0%%;

%%LOCATIONS%%    }

    server {
        listen 127.0.0.1:%%PORT_2%%;

        access_log %%TESTDIR%%/upstream.log enc;
        default_type application/json;
        root %%TESTDIR%%/www;
        etag off;
        if_modified_since off;

        location = /gzip.json { gzip_static on; }
        location = /deflate.json { add_header Content-Encoding deflate; }
        location = /zstd.json { add_header Content-Encoding zstd; }
        location = /bomb.json { add_header Content-Encoding gzip; }
        location = /corrupt.json { add_header Content-Encoding gzip; }
    }
}
EOF

$conf =~ s/%%POLLS%%/$polls/;
$conf =~ s/%%LOCATIONS%%/$locations/;

$t->write_config($conf);
$t->run;

sub st { $t->status("/st/$_[0]") }

for my $c ([ gzip => 'GZ', 1.5 ], [ deflate => 'DF', 2.5 ],
           ($zstd ? [ zstd => 'ZS', 3.5 ] : ()), [ bomb => 'BM', 4.5 ],
           [ corrupt => 'CR', 5.5 ], [ plain => 'PL', 6.5 ])
{
    my ($zone, $sym, $price) = @$c;

    ok($t->wait_status('refreshes', 2, 10, "/st/$zone"),
       "$zone: refreshes");
    is(st($zone)->{failures}, 0, "$zone: no failure");

    my $list = $t->json_decode($t->get("/api/$zone")->{content});

    is(ref $list eq 'ARRAY' ? scalar @$list : -1, 1, "$zone: one record");
    is($list->[0]{symbol}, $sym, "$zone: its symbol, decoded");
    is($list->[0]{price}, $price, "$zone: its price");
}

ok($zstd, 'the zstd tool, to make a body with (build.sh installs it)');

# what the requests offered: each encoding the libcurl here decodes

my @offered = map { [ split ' ', $_, 2 ] }
              split /\n/, $t->read_file('upstream.log');
my ($first) = grep { $_->[0] eq '/plain.json' } @offered;
my %enc = map { $_ => 1 } split /\s*,\s*/, $first->[1] // '';

my $features = `curl --version 2>/dev/null`;

ok($enc{gzip} && $enc{deflate},
   "Accept-Encoding offers gzip and deflate ($first->[1])");
ok($enc{br} || $features !~ /\bbrotli\b/, 'and br, as libcurl has brotli');
ok($enc{zstd} || $features !~ /\bzstd\b/, 'and zstd, as libcurl has zstd');

# a gzip of 4 KB that inflates to 4 MB, past max_size=64k

my $bomb_st = st('bomb');

put('bomb.json', $bomb);

ok($t->wait_status('failures', 1, 10, '/st/bomb'), 'bomb: refused');
like(st('bomb')->{lastError} // '', qr/larger than max_size 65536/,
     'bomb: lastError names max_size');
is($t->json_decode($t->get('/api/bomb')->{content})->[0]{symbol}, 'BM',
   'bomb: the data is kept');
like($t->read_file('error.log'),
     qr/\[error\] .*zone "bomb": .*larger than max_size 65536.*, keeping 1 symbols?/,
     'bomb: one error line');
ok(length($bomb) < 16 * 1024, 'bomb: (the body sent is ' . length($bomb)
   . ' bytes)');

# a gzip cut short, then garbage sent as gzip

put('corrupt.json', substr(gz(prices('XX', 9)), 0, 20));

ok($t->wait_status('failures', 1, 10, '/st/corrupt'), 'cut gzip: refused');

put('corrupt.json', "this is not gzip\n" x 10);

ok($t->wait_status('failures', st('corrupt')->{failures} + 2, 10,
                   '/st/corrupt'), 'garbage as gzip: refused');
like(st('corrupt')->{lastError} // '',
     qr/unencoding|decompress|incorrect header/i,
     'garbage as gzip: lastError says it does not decode ('
     . (st('corrupt')->{lastError} // 'null') . ')');
is($t->json_decode($t->get('/api/corrupt')->{content})->[0]{symbol}, 'CR',
   'garbage as gzip: the data is kept');
like($t->read_file('error.log'),
     qr/\[error\] .*zone "corrupt": .*(?:unencoding|decompress|incorrect header).*, keeping 1 symbol/i,
     'garbage as gzip: one error line');

$t->done;

done_testing;
