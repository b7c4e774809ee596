#!/usr/bin/perl

# Serving and parsing: every answer right (CONTRACT section 4.1).
#
# - A list of 32k or more, sent from the worker's copy (with sendfile on,
#   from a memfd, as a file buffer), comes out byte for byte the same on
#   connection after connection, for every combination of gzip, sendfile
#   and aio threads; under valgrind (TEST_VALGRIND=1) done() also sees
#   that no request reads memory freed with an earlier connection.
# - HEAD and 304 are nginx's: same status and headers as GET, no body;
#   If-None-Match with the ETag, "*", W/ and lists; If-Modified-Since.
# - Error bodies are valid UTF-8 JSON, whatever bytes the client sent.
# - One Cache-Control: no-cache, or what "expires" says instead.
# - ETags never collide: not across two instances started in the same
#   second, and within one they change exactly when the data changes.
# - "stockprice" is refused in a regex location, whose prefix it cannot
#   know; prefix and exact locations and stockprice_status stay accepted.

use strict;
use warnings;

use Encode ();
use IO::Select;
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $json = JSON::PP->new;

###############################################################################

# one nginx: the demo feed (500 symbols, and MSFT, AAPL, SAP), polled once
# (interval=1h), so that every answer below is of one generation

my $t = StockTest->new;

# the 8 combinations of gzip, sendfile and aio threads, those with sendfile
# on first: the first request after the refresh makes the worker's copy of
# the list, and only a sendfile location makes it with a memfd

my @combos = map { my $s = $_; map { my $g = $_; map { [$g, $s, $_] } 0, 1 }
                                   0, 1 } 1, 0;

my $combos = '';

for my $c (@combos) {
    my ($g, $s, $io) = @$c;
    $combos .= "        location /g${g}s${s}a$io/api/StockPrice {\n"
        . '            gzip ' . ($g ? 'on' : 'off') . ";\n"
        . '            sendfile ' . ($s ? 'on' : 'off') . ";\n"
        . '            aio ' . ($io ? 'threads' : 'off') . ";\n"
        . "            stockprice stocks;\n"
        . "        }\n";
}

(my $conf = <<'EOF2') =~ s/%%COMBOS%%\n/$combos/;
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 128; }
http {
    %%TEMPS%%
    access_log off;

    gzip_types application/json;
    gzip_min_length 20;

    stockprice_poll http://127.0.0.1:%%PORT_0%%/feed/prices zone=stocks:4m
                    interval=1h;

    stockprice_poll http://127.0.0.1:%%PORT_0%%/feed3/prices zone=small:64k
                    interval=1h history=3;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /feed/ { stockprice_demo_feed count=500; }
        location /feed3/ { stockprice_demo_feed; }

%%COMBOS%%
        location /api/StockPrice { stockprice small; }
        location /exp/api/StockPrice {
            expires 10s;
            stockprice small;
        }

        location = /status { stockprice_status small; }
        location = /stocks/status { stockprice_status stocks; }
    }
}
EOF2

$t->write_config($conf);
$t->run;

ok($t->wait_status('refreshes', 1), 'small: first refresh');
ok($t->wait_status('refreshes', 1, 10, '/stocks/status'),
   'stocks: first refresh');
is($t->status('/stocks/status')->{symbols}, 500, 'stocks: 500 symbols');

# 1. the list of 500 symbols, 5 new connections per combination

sub combo_name {
    my ($g, $s, $io) = @{ $_[0] };

    return 'gzip ' . ($g ? 'on' : 'off') . ', sendfile ' . ($s ? 'on' : 'off')
           . ', aio ' . ($io ? 'threads' : 'off');
}

sub combo_url {
    my ($g, $s, $io) = @{ $_[0] };

    return "/g${g}s${s}a$io/api/StockPrice";
}

# the body as sent, gunzipped if it came gzipped

sub plain {
    my ($r) = @_;

    return $r->{content}
        unless ($r->{headers}{'content-encoding'} // '') eq 'gzip';

    my $out;
    gunzip(\$r->{content} => \$out) or return "gunzip failed: $GunzipError";

    return $out;
}

# the first request makes the copy (gzip off, sendfile on: from a memfd);
# its connection is closed before any other

my $first = $t->get(combo_url([0, 1, 0]));
my $ref = $t->get(combo_url([0, 0, 0]));

is($ref->{status}, 200, 'list of 500: 200');
ok(length $ref->{content} >= 32768,
   'list of 500 is 32k or more (' . length($ref->{content}) . ' bytes)');
is(scalar @{ $t->json_decode($ref->{content}) // [] }, 500,
   'list of 500: 500 records');
is($first->{content}, $ref->{content},
   'first list (sendfile on) equals the plain list');

my (%good, %gzipped);

for my $round (1 .. 5) {
    for my $c (@combos) {
        my $name = combo_name($c);
        my $r = $t->get(combo_url($c),
                        $c->[0] ? ('Accept-Encoding' => 'gzip') : ());

        $gzipped{$name}++
            if ($r->{headers}{'content-encoding'} // '') eq 'gzip';

        $good{$name}++
            if $r->{status} == 200 && plain($r) eq $ref->{content};
    }
}

for my $c (@combos) {
    my $name = combo_name($c);

    is($good{$name} // 0, 5,
       "$name: 5 lists on new connections equal the plain list");
    is($gzipped{$name} // 0, $c->[0] ? 5 : 0,
       "$name: " . ($c->[0] ? 'every one gzipped' : 'none gzipped'));
}

# 2. HEAD and 304, answered by nginx's own filters

sub one {
    my ($v) = @_;

    return ref $v ? join(', ', @$v) : $v;
}

for my $case (['list', '/api/StockPrice'],
              ['list of 500', combo_url([0, 1, 0])],
              ['history', '/api/StockPrice/MSFT'],
              ['?symbols=', '/api/StockPrice?symbols=MSFT,SAP'],
              ['unknown symbol', '/api/StockPrice/NOPE'])
{
    my ($what, $url) = @$case;

    my $g = $t->get($url);
    my $h = $t->http('HEAD', $url);

    is($h->{status}, $g->{status}, "$what: HEAD has the status of GET "
       . "($g->{status})");
    is($h->{content} // '', '', "$what: HEAD has no body");

    for my $name ('content-length', 'etag', 'last-modified', 'cache-control')
    {
        is(one($h->{headers}{$name}), one($g->{headers}{$name}),
           "$what: HEAD has the $name of GET");
    }

    is($g->{headers}{'content-length'}, length $g->{content},
       "$what: Content-Length of GET is its body's");

    next if $g->{status} != 200;

    my $etag = $g->{headers}{etag};

    ok(defined $etag && $etag =~ /^"[^"]+"$/, "$what: a strong ETag");

    my $r = $t->get($url, 'If-None-Match' => $etag);
    is($r->{status}, 304, "$what: If-None-Match with the ETag: 304");
    is($r->{content} // '', '', "$what: 304 has no body");
    is($r->{headers}{etag}, $etag, "$what: 304 carries the ETag");

    $r = $t->get($url, 'If-None-Match' => '*');
    is($r->{status}, 304, "$what: If-None-Match *: 304");

    $r = $t->get($url, 'If-None-Match' => "W/$etag");
    is($r->{status}, 304, "$what: If-None-Match W/ETag: 304 (weak)");

    $r = $t->get($url, 'If-None-Match' => "\"x-1\", $etag, \"y-2\"");
    is($r->{status}, 304, "$what: If-None-Match list holding the ETag: 304");

    $r = $t->get($url, 'If-None-Match' => '"x-1", W/"y-2"');
    is($r->{status}, 200, "$what: If-None-Match list without it: 200");
    is($r->{content}, $g->{content}, "$what: and the body");

    $r = $t->get($url, 'If-None-Match' => '"0-0"');
    is($r->{status}, 200, "$what: If-None-Match an old ETag: 200");
    is($r->{content}, $g->{content}, "$what: and the body");

    $r = $t->get($url,
                 'If-Modified-Since' => $g->{headers}{'last-modified'});
    is($r->{status}, 304, "$what: If-Modified-Since its Last-Modified: 304");
    is($r->{content} // '', '', "$what: 304 has no body");

    $r = $t->http('HEAD', $url, headers => { 'If-None-Match' => $etag });
    is($r->{status}, 304, "$what: HEAD with If-None-Match the ETag: 304");
}

# 3. error bodies: valid UTF-8, valid JSON, whatever the client sent

# (valid UTF-8, the decoded JSON or undef)

sub utf8_json {
    my ($bytes) = @_;

    my $copy = $bytes // '';
    my $text = eval { Encode::decode('UTF-8', $copy, Encode::FB_CROAK) };

    return (0, undef) unless defined $text;
    return (1, eval { $json->decode($text) });
}

my $r = $t->get('/api/StockPrice/%FF%FE');
is($r->{status}, 404, 'symbol of bytes FF FE: 404');
unlike($r->{content}, qr/[\xFE\xFF]/,
       'symbol of bytes FF FE: the bytes are not echoed raw');
my ($valid, $err) = utf8_json($r->{content});
ok($valid, 'symbol of bytes FF FE: body is valid UTF-8');
ok(ref $err eq 'HASH' && defined $err->{error} && !ref $err->{error},
   'symbol of bytes FF FE: body is JSON {"error": "..."}');

# 100 euro signs, after 0, 1 and 2 ASCII bytes: a cut at any byte count
# falls inside a character for one of them

for my $lead ('', 'X', 'XY') {
    my $what = 'symbol of ' . ($lead ? "$lead and " : '')
               . '100 euro signs (' . (length($lead) + 300) . ' bytes)';

    $r = $t->get("/api/StockPrice/$lead" . ('%E2%82%AC' x 100));
    is($r->{status}, 404, "$what: 404");
    ($valid, $err) = utf8_json($r->{content});
    ok($valid, "$what: body is valid UTF-8 (not cut inside a character)");
    ok(ref $err eq 'HASH' && defined $err->{error} && !ref $err->{error},
       "$what: body is JSON {\"error\": \"...\"}");
    unlike(ref $err eq 'HASH' ? $err->{error} // '' : '', qr/\x{FFFD}/,
           "$what: no partial character in the error text");
}

$r = $t->http('POST', '/api/StockPrice', content => 'x=1',
              headers => { 'Content-Type' => 'text/plain' });
is($r->{status}, 405, 'POST: 405');
is($r->{headers}{allow}, 'GET, HEAD', 'POST: Allow: GET, HEAD');
($valid, $err) = utf8_json($r->{content});
ok($valid && ref $err eq 'HASH' && defined $err->{error},
   'POST: body is valid UTF-8 JSON {"error": "..."}');

# 4. one Cache-Control, counted in the raw response

for my $case (['list', '/api/StockPrice'],
              ['history', '/api/StockPrice/MSFT'],
              ['?symbols=', '/api/StockPrice?symbols=MSFT,SAP'])
{
    my ($what, $url) = @$case;

    for my $loc ('', '/exp') {
        my $w = $loc ? "$what with expires 10s" : "$what without expires";
        my $raw = raw_get($t, "$loc$url");

        is($raw->{status}, 200, "$w: 200");

        my @cc = map { /^Cache-Control:\s*(.*?)\s*$/i ? $1 : () }
                 @{ $raw->{lines} };

        is(scalar @cc, 1,
           "$w: one Cache-Control header (" . join(' | ', @cc) . ')');
        is($cc[0], $loc ? 'max-age=10' : 'no-cache',
           "$w: Cache-Control: " . ($loc ? 'max-age=10' : 'no-cache'));
    }
}

$t->done;

###############################################################################

# 5. ETags never collide: two instances started in the same second, each
# polling its own upstream that serves other symbols

my %body_of;

sub seen {
    my ($r) = @_;

    my $e = $r->{headers}{etag} // return;
    push @{ $body_of{$e} }, $r->{content}
        unless grep { $_ eq $r->{content} } @{ $body_of{$e} // [] };
}

my $pair = <<'EOF2';
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=once:64k
                    interval=1h;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=often:64k
                    interval=300ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice once; }
        location /often/api/StockPrice { stockprice often; }
        location = /status { stockprice_status once; }
        location = /often/status { stockprice_status often; }
    }
}
EOF2

my $ta = StockTest->new;
my $tb = StockTest->new;

my $upa = FakeUpstream->start($ta);
my $upb = FakeUpstream->start($tb);

$upa->control({ auth => 0, symbols => [qw(AAA ABC)] });
$upb->control({ auth => 0, symbols => [qw(BBB BCD)] });

$ta->write_config($pair);
$tb->write_config($pair);

# both at the start of a second, a deliberate pause of less than one

sleep(1.02 - (time - int(time)));

my $start = time;
$ta->run;
$tb->run;
my $took = time - $start;

ok($ta->wait_status('refreshes', 1), 'instance A: first refresh');
ok($tb->wait_status('refreshes', 1), 'instance B: first refresh');

my $la = $ta->get('/api/StockPrice');
my $lb = $tb->get('/api/StockPrice');
seen($_) for $la, $lb;

like($la->{content}, qr/"AAA"/, 'instance A serves its upstream\'s symbols');
like($lb->{content}, qr/"BBB"/, 'instance B serves its upstream\'s symbols');
isnt($la->{content}, $lb->{content}, 'the two lists differ');
isnt($la->{headers}{etag}, $lb->{headers}{etag},
     'two instances started together: the ETags of different lists differ ('
     . ($la->{headers}{etag} // 'none') . ' and '
     . ($lb->{headers}{etag} // 'none') . sprintf(', started %.2f s apart)',
                                                 $took));

# within one instance: no refresh (interval=1h), the same ETag

my $la2 = $ta->get('/api/StockPrice');
seen($la2);
is($ta->status->{refreshes}, 1, 'instance A: still one refresh');
is($la2->{content}, $la->{content}, 'no refresh: the same list');
is($la2->{headers}{etag}, $la->{headers}{etag}, 'no refresh: the same ETag');

# and a refresh: another list, another ETag

for my $u ($ta, $tb) {
    my $o1 = $u->get('/often/api/StockPrice');
    my $n = $u->status('/often/status')->{refreshes} // 0;

    ok($u->wait_status('refreshes', $n + 2, 10, '/often/status'),
       'often: two more refreshes');

    my $o2 = $u->get('/often/api/StockPrice');
    seen($_) for $o1, $o2;

    isnt($o2->{content}, $o1->{content}, 'often: refreshed, another list');
    isnt($o2->{headers}{etag}, $o1->{headers}{etag},
         'often: refreshed, another ETag');
}

my @shared = grep { @{ $body_of{$_} } > 1 } sort keys %body_of;
is("@shared", '', 'no ETag seen for two different bodies');

$ta->done;
$tb->done;

###############################################################################

# 6. regex locations: refused for stockprice, with file:line

my $tc = StockTest->new;

# the location and its directive on line 6 of nginx.conf

sub regex_conf {
    my ($location) = @_;

    $tc->write_config(<<"EOF2");
%%MODULE%%
events { }
http {
stockprice_poll http://127.0.0.1:1/prices zone=s:64k;
server { listen 127.0.0.1:%%PORT_0%%;
$location }
%%TEMPS%%
}
%%BASE%%
EOF2

    return $tc->test_config;
}

for my $op ('~', '~*') {
    my ($rc, $out) = regex_conf("location $op ^/api/StockPrice "
                                . '{ stockprice s; }');

    isnt($rc, 0, "stockprice in a \"$op\" location: nginx -t fails");
    like($out, qr/"stockprice" directive cannot be used in a regex location/,
         "stockprice in a \"$op\" location: says why");
    like($out, qr/nginx\.conf:6\b/,
         "stockprice in a \"$op\" location: names nginx.conf:6");
}

for my $case (['a prefix location', 'location /api/StockPrice'],
              ['an exact location', 'location = /api/StockPrice'])
{
    my ($what, $location) = @$case;
    my ($rc, $out) = regex_conf("$location { stockprice s; }");
    is($rc, 0, "stockprice in $what: accepted") or diag $out;
}

my ($rc, $out) = regex_conf('location ~ ^/status$ { stockprice_status s; }');
is($rc, 0, 'stockprice_status in a regex location: accepted') or diag $out;

$tc->done;

done_testing;


# GET over a raw connection: status, header lines as sent, body

sub raw_get {
    my ($t, $uri) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port(0),
                                  Timeout => $t->limit(5))
        or return { status => 0, lines => [] };

    print $s "GET $uri HTTP/1.1\r\nHost: localhost\r\n"
             . "Connection: close\r\n\r\n";

    my $sel = IO::Select->new($s);
    my $end = time + $t->limit(5);
    my $buf = '';

    while (time < $end && $sel->can_read($end - time)) {
        my $n = sysread($s, my $chunk, 65536);
        last unless $n;
        $buf .= $chunk;
    }

    close $s;

    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($line, @lines) = split /\r\n/, $head // '';
    my ($status) = ($line // '') =~ m{^HTTP/1\.\d (\d{3})};

    return { status => $status // 0, lines => \@lines, body => $body };
}
