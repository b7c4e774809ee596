#!/usr/bin/perl

# Provider response shapes (CONTRACT sections 3.3, 3.3a and 3.4), each
# consumed by configuration alone, over HTTPS: records= (a JSON Pointer,
# RFC 6901, escapes and array indexes included), symbol_field=,
# price_field=, time_field= with the units iso, s, ms, us and ns; the six
# shapes of 3.4 (a top-level array, an array nested in an object, an
# object keyed by symbol, a keyed object nested, one object per symbol
# with $symbol, one nested object of strings); epoch times served as
# ISO-8601 UTC with "Z" and at most 7 fraction digits, iso strings kept as
# sent; records found but none valid, nothing at records= or the wrong
# type there a failed refresh that keeps the data, an empty array or
# object a successful refresh that changes nothing; the defaults as the
# seed's shape; malformed pointers and units refused by nginx -t; no
# secret in the log or an answer.  The upstreams are HTTPS servers of the
# test's own nginx serving the bodies as static files from the prefix (one
# of them with mutual TLS and two secret headers, as Alpaca wants), with
# certificates of a CA that the test makes with openssl.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use StockTest;

my $t = StockTest->new;
my $d = $t->dir;

# the secrets: in a URL (Finnhub, Alpha Vantage) and in headers (Alpaca)

my $fh_key = 'fhK3yQuote77';
my $av_key = 'avK3yGlobal55';
my $ap_id = 'PKSHAPES01';
my $ap_secret = 'apcaS3cretShapes9';

$t->write_file('finnhub.key', "$fh_key\n");
$t->write_file('av.key', "$av_key\n");
$t->write_file('alpaca.id', "$ap_id\n");
$t->write_file('alpaca.secret', "$ap_secret\n");

$t->make_ca('ca');
$t->make_ca('client-ca');
$t->make_cert('server', 'ca', 'IP:127.0.0.1');
$t->make_cert('client', 'client-ca', 'DNS:client.example');

# the bodies, served from www/ under the prefix; replaced by a rename, so
# that a refresh never reads half a file.  Workers started by root run as
# another user: the prefix (0700) lets them through to www/

mkdir "$d/www" or die "mkdir $d/www: $!";
chmod 0711, $d;
chmod 0755, "$d/www";

sub put {
    my ($name, $body) = @_;

    $t->write_file("www/.$name.tmp", $body);
    rename "$d/www/.$name.tmp", "$d/www/$name" or die "rename $name: $!";
}

put('fmp.json', '[{"symbol":"AAPL","price":189.2,"timestamp":1704067200},'
    . '{"symbol":"MSFT","price":411.1,"timestamp":1704067200.5}]');

for my $v ([ 'ns', '1704067200123456789', '1704067200000000000' ],
           [ 'ms', '1704067200123', '1704067200000' ],
           [ 'us', '1704067200123456', '1704067200000000' ])
{
    my ($unit, $aapl, $msft) = @$v;

    put("polygon-$unit.json", '{"status":"OK","tickers":['
        . qq{{"ticker":"AAPL","lastTrade":{"p":189.2,"t":$aapl}},}
        . qq{{"ticker":"MSFT","lastTrade":{"p":411.1,"t":$msft}}],}
        . '"count":2}');
}

put('twelve.json', '{"AAPL":{"price":"189.20"},"MSFT":{"price":"411.10"}}');

put('alpaca.json', '{"trades":{'
    . '"AAPL":{"t":"2024-01-02T15:04:05.123Z","p":189.2},'
    . '"MSFT":{"t":"2024-01-02T15:04:06+01:00","p":411.1}}}');

put('quote-AAPL.json', '{"c":189.2,"t":1704067200}');
put('quote-MSFT.json', '{"c":411.1,"t":1704067260}');

put('av-IBM.json', '{"Global Quote":{"01. symbol":"IBM",'
    . '"05. price":"225.9700","07. latest trading day":"2024-01-02"}}');

# asked for SAP, names another symbol: dropped
put('av-SAP.json', '{"Global Quote":{"01. symbol":"ORCL",'
    . '"05. price":"150.0000","07. latest trading day":"2024-01-02"}}');

put('escape.json', '{"a/b":{"m~n":[{"s":"X1","v":{"p":1.5}}]}}');
put('index.json', '{"data":[{"quotes":[{"symbol":"Y1","price":2}]}]}');

put('seed.json', '[{"symbol":"AAPL","price":1.5,'
    . '"valueDateTime":"2024-01-02T03:04:05Z"}]');

# failures that keep the data: good body, failing body, empty body

my %phases = (
    gone => [
        '{"data":[{"symbol":"AAPL","price":1.5}]}',
        '{"status":"ERROR","error":"over quota"}',
        '{"data":[]}',
        'nothing at records=',
    ],
    wrongtype => [
        '{"data":[{"symbol":"AAPL","price":1.5}]}',
        '{"data":"over quota"}',
        '{"data":{}}',
        'a string at records=',
    ],
    note => [
        '{"AAPL":{"price":"189.20"}}',
        '{"Note":"Thank you for using Alpha Vantage! rate limit"}',
        '{}',
        'a keyed object of no valid record',
    ],
    novalid => [
        '[{"symbol":"AAPL","price":1.5}]',
        '[{"symbol":"AAPL"},{"price":2},{"symbol":"","price":3}]',
        '[]',
        'an array of no valid record',
    ],
);

put("$_.json", $phases{$_}[0]) for keys %phases;

# TLS handshakes under valgrind take seconds
my $poll = 'interval=300ms timeout=' . $t->limit(2) . 's'
           . ' ssl_trusted_certificate=%%TESTDIR%%/ca.pem';

my $U = 'https://127.0.0.1:%%PORT_2%%';
my $mtls = 'https://127.0.0.1:%%PORT_3%%/v2/stocks/trades/latest'
    . ' symbols=AAPL,MSFT records=/trades price_field=/p time_field=/t'
    . ' ssl_certificate=%%TESTDIR%%/client.pem'
    . ' ssl_certificate_key=%%TESTDIR%%/client.key';

my @polls = (
    # 1. top-level array (Financial Modeling Prep)
    [ fmp => "$U/fmp.json time_field=/timestamp:s" ],

    # 2. array nested in an object (Polygon), in ns, ms and us
    (map { [ "polygon_$_" => "$U/polygon-$_.json records=/tickers"
             . " symbol_field=/ticker price_field=/lastTrade/p"
             . " time_field=/lastTrade/t:$_" ] } qw(ns ms us)),

    # 3. object keyed by symbol (Twelve Data batch)
    [ twelve => "\"$U/price?symbol=\$symbols\" symbols=AAPL,MSFT"
                . " price_field=/price" ],

    # 4. keyed object nested (Alpaca latest trades): mutual TLS, two
    # secret headers; without the headers the server answers 403
    [ alpaca => "$mtls secret=keyid:%%TESTDIR%%/alpaca.id"
                . " secret=apsecret:%%TESTDIR%%/alpaca.secret"
                . ' "header=APCA-API-KEY-ID: $keyid"'
                . ' "header=APCA-API-SECRET-KEY: $apsecret"' ],
    [ alpaca_nokey => $mtls ],

    # 5. one object per symbol (Finnhub /quote), the key in a header as
    # in the README; without it the server answers 403
    [ finnhub => "\"$U/quote?symbol=\$symbol\" concurrency=2"
                 . " symbols=AAPL,MSFT secret=key:%%TESTDIR%%/finnhub.key"
                 . ' "header=X-Finnhub-Token: $key"'
                 . " price_field=/c time_field=/t:s" ],

    # 6. one object, nested, strings (Alpha Vantage GLOBAL_QUOTE); SAP's
    # answer names another symbol
    (map { [ $_->[0] => "\"$U/query?function=GLOBAL_QUOTE&symbol=\$symbol"
             . "&apikey=\$avkey\" symbols=$_->[1]"
             . " secret=avkey:%%TESTDIR%%/av.key"
             . ' "records=/Global Quote" "symbol_field=/01. symbol"'
             . ' "price_field=/05. price"' ] }
         [ alphav => 'IBM' ], [ mismatch => 'IBM,SAP' ]),

    # 7. JSON Pointer escapes and an array index
    [ escape => "$U/escape.json records=/a~1b/m~0n symbol_field=/s"
                . " price_field=/v/p" ],
    [ index => "$U/index.json records=/data/0/quotes" ],

    # 8. failed refreshes keep the data
    [ gone => "$U/gone.json records=/data" ],
    [ wrongtype => "$U/wrongtype.json records=/data" ],
    [ note => "$U/note.json price_field=/price" ],
    [ novalid => "$U/novalid.json" ],

    # 9. the defaults, implicit and explicit
    [ seed => "$U/seed.json" ],
    [ seedx => "$U/seed.json symbol_field=/symbol price_field=/price"
               . " time_field=/valueDateTime:iso" ],
);

my @zones = map { $_->[0] } @polls;

my $conf_polls = join '', map {
    "    stockprice_poll $_->[1]\n"
    . "                    zone=$_->[0]:64k $poll;\n"
} @polls;

my $conf_locations = join '', map {
    "        location /api/$_ { stockprice $_; }\n"
    . "        location = /st/$_ { stockprice_status $_; }\n"
} @zones;

# the upstreams answer no conditional request: every refresh reads the
# file; they log elsewhere, as their request lines hold the keys

my $conf = <<'EOF';
%%MODULE%%
%%BASE%%
events { worker_connections 256; }
http {
    %%TEMPS%%
    access_log off;

%%POLLS%%
    server {
        listen 127.0.0.1:%%PORT_0%%;

%%LOCATIONS%%    }

    server {
        listen 127.0.0.1:%%PORT_2%% ssl;
        ssl_certificate %%TESTDIR%%/server.pem;
        ssl_certificate_key %%TESTDIR%%/server.key;

        error_log %%TESTDIR%%/upstream.log info;
        default_type application/json;
        root %%TESTDIR%%/www;
        etag off;
        if_modified_since off;

        location = /price {
            if ($arg_symbol != "AAPL,MSFT") { return 400; }
            try_files /twelve.json =404;
        }

        location = /quote {
            if ($http_x_finnhub_token != "%%FHKEY%%") { return 403; }
            try_files /quote-$arg_symbol.json =404;
        }

        location = /query {
            if ($arg_apikey != "%%AVKEY%%") { return 403; }
            if ($arg_function != "GLOBAL_QUOTE") { return 400; }
            try_files /av-$arg_symbol.json =404;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_3%% ssl;
        ssl_certificate %%TESTDIR%%/server.pem;
        ssl_certificate_key %%TESTDIR%%/server.key;
        ssl_verify_client on;
        ssl_client_certificate %%TESTDIR%%/client-ca.pem;

        error_log %%TESTDIR%%/upstream.log info;
        default_type application/json;
        root %%TESTDIR%%/www;
        etag off;
        if_modified_since off;

        location = /v2/stocks/trades/latest {
            if ($http_apca_api_key_id != "%%APID%%") { return 403; }
            if ($http_apca_api_secret_key != "%%APSECRET%%") { return 403; }
            if ($arg_symbols != "AAPL,MSFT") { return 400; }
            try_files /alpaca.json =404;
        }
    }
}
EOF

$conf =~ s/%%POLLS%%/$conf_polls/;
$conf =~ s/%%LOCATIONS%%/$conf_locations/;
$conf =~ s/%%FHKEY%%/$fh_key/;
$conf =~ s/%%AVKEY%%/$av_key/;
$conf =~ s/%%APID%%/$ap_id/;
$conf =~ s/%%APSECRET%%/$ap_secret/;

$t->write_config($conf);

my ($rc, $out) = $t->test_config;

is($rc, 0, 'nginx -t accepts records=, symbol_field=, price_field=, '
   . 'time_field= and $symbol') or diag($out);

my $up = $rc == 0 && eval { $t->run; 1 };

ok($up, 'nginx starts') or diag($rc ? 'nginx -t failed' : $@);

# waits only while nginx runs: with no nginx every check fails at once

sub waiting {
    my ($code, $timeout) = @_;

    return $up ? $t->wait_for($code, $timeout) : 0;
}

sub st { $t->status("/st/$_[0]") }

my %want_fail = (alpaca_nokey => 1);

ok(waiting(sub {
    for my $z (@zones) {
        my $st = st($z);
        return 0 unless ($st->{$want_fail{$z} ? 'failures' : 'refreshes'}
                         // 0) >= 1;
    }
    return 1;
}, 10), 'every zone has refreshed once');

my $uuid = qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-
               [0-9a-f]{12}$/x;
my $iso = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$/;

# the list of $zone is exactly @want: [ symbol, price as served, value time
# (undef: the measurement time) ] in that order; the refreshes applied
# every record, replaced no value time

sub check_list {
    my ($zone, @want) = @_;

    my $r = $t->get("/api/$zone");
    my $list = $t->json_decode($r->{content});
    $list = [] unless ref $list eq 'ARRAY';

    is(join(',', map { $_->{symbol} // '?' } @$list),
       join(',', map { $_->[0] } @want), "$zone: symbols served");

    for my $w (@want) {
        my ($sym, $price, $vdt) = @$w;
        my ($rec) = grep { ($_->{symbol} // '') eq $sym } @$list;
        $rec //= {};

        is_deeply([ sort keys %$rec ],
                  [ qw(id measurementTimeStamp price symbol valueDateTime) ],
                  "$zone: $sym has exactly the record fields");
        like($rec->{id} // '', $uuid, "$zone: $sym id is a version 4 uuid");
        like($r->{content} // '',
             qr/"symbol":"\Q$sym\E","price":\Q$price\E,/,
             "$zone: $sym price $price, a JSON number");
        like($rec->{measurementTimeStamp} // '', $iso,
             "$zone: $sym measurementTimeStamp is ISO-8601 UTC");

        if (defined $vdt) {
            is($rec->{valueDateTime}, $vdt, "$zone: $sym valueDateTime $vdt");

        } else {
            ok(defined $rec->{valueDateTime}
               && $rec->{valueDateTime} eq $rec->{measurementTimeStamp},
               "$zone: $sym valueDateTime is the measurement time");
        }
    }

    return $list;
}

sub check_clean {
    my ($zone) = @_;

    my $st = st($zone);

    is($st->{skippedRecords}, 0, "$zone: no record skipped");
    is($st->{replacedValueTimes}, 0, "$zone: no value time replaced");
    is($st->{failures}, 0, "$zone: no failed refresh");
}

# 1. top-level array

check_list('fmp',
           [ 'AAPL', '189.2', '2024-01-01T00:00:00Z' ],
           [ 'MSFT', '411.1', '2024-01-01T00:00:00.5Z' ]);
check_clean('fmp');

# 2. array nested in an object; ns cut to 7 digits, ms and us exact

check_list('polygon_ns',
           [ 'AAPL', '189.2', '2024-01-01T00:00:00.1234567Z' ],
           [ 'MSFT', '411.1', '2024-01-01T00:00:00Z' ]);
check_list('polygon_ms',
           [ 'AAPL', '189.2', '2024-01-01T00:00:00.123Z' ],
           [ 'MSFT', '411.1', '2024-01-01T00:00:00Z' ]);
check_list('polygon_us',
           [ 'AAPL', '189.2', '2024-01-01T00:00:00.123456Z' ],
           [ 'MSFT', '411.1', '2024-01-01T00:00:00Z' ]);
check_clean($_) for qw(polygon_ns polygon_ms polygon_us);

# 3. object keyed by symbol, numeric strings

check_list('twelve', [ 'AAPL', '189.2', undef ], [ 'MSFT', '411.1', undef ]);
check_clean('twelve');

# 4. keyed object nested, iso strings as sent; mutual TLS and two headers

check_list('alpaca',
           [ 'AAPL', '189.2', '2024-01-02T15:04:05.123Z' ],
           [ 'MSFT', '411.1', '2024-01-02T15:04:06+01:00' ]);
check_clean('alpaca');

{
    my $st = st('alpaca_nokey');

    ok(($st->{failures} // 0) >= 1 && ($st->{refreshes} // -1) == 0,
       'alpaca without the key headers: refused');
    like($st->{lastError} // '', qr/\b403\b/,
         'alpaca without the key headers: the server answered 403');
}

# 5. one object per symbol: the record takes the symbol requested

check_list('finnhub',
           [ 'AAPL', '189.2', '2024-01-01T00:00:00Z' ],
           [ 'MSFT', '411.1', '2024-01-01T00:01:00Z' ]);
check_clean('finnhub');

# 6. one object, nested, strings, pointers with blanks

check_list('alphav', [ 'IBM', '225.97', undef ]);
check_clean('alphav');

check_list('mismatch', [ 'IBM', '225.97', undef ]);
ok(($t->get('/api/mismatch/ORCL')->{status} // 0) == 404
   && ($t->get('/api/mismatch/SAP')->{status} // 0) == 404,
   'mismatch: the record naming another symbol than requested is dropped');

# 7. JSON Pointer escapes (~1 is "/", ~0 is "~") and an array index

check_list('escape', [ 'X1', '1.5', undef ]);
check_clean('escape');
check_list('index', [ 'Y1', '2', undef ]);
check_clean('index');

# 9. the defaults are the seed's shape

my ($implicit) = @{ check_list('seed',
                                [ 'AAPL', '1.5', '2024-01-02T03:04:05Z' ]) };
my ($explicit) = @{ check_list('seedx',
                                [ 'AAPL', '1.5', '2024-01-02T03:04:05Z' ]) };
check_clean($_) for qw(seed seedx);

my @same = map { [ @{ $_ // {} }{qw(symbol price valueDateTime)} ] }
               $implicit, $explicit;

is_deeply($same[1], $implicit ? $same[0] : [ 'no record in seed' ],
          'the defaults and the explicit defaults serve the same record');

# 8. a failed refresh keeps the data exactly; an empty one changes nothing

sub snapshot {
    my ($zone) = @_;

    my $st = st($zone);
    my $r = $t->get("/api/$zone");

    return ($st, $r->{content} // '', $r->{headers}{etag} // '');
}

for my $zone (sort keys %phases) {
    my ($good, $bad, $empty, $what) = @{ $phases{$zone} };
    my ($st0, $list0, $etag0, $st1, $list1, $etag1);

    # a good refresh has just happened, then the failing body: a good
    # refresh in between is a race of the test, tried again

    for my $try (1 .. 3) {
        put("$zone.json", $good);

        my $r = st($zone)->{refreshes} // 0;

        waiting(sub { (st($zone)->{refreshes} // 0) > $r }, 3);

        ($st0, $list0, $etag0) = snapshot($zone);

        put("$zone.json", $bad);

        my $f = $st0->{failures} // 0;

        last unless waiting(sub { (st($zone)->{failures} // 0) > $f }, 3);

        ($st1, $list1, $etag1) = snapshot($zone);

        last if ($st1->{refreshes} // 0) == ($st0->{refreshes} // 0);
    }

    $st1 //= {};
    $list1 //= '';
    $etag1 //= '';

    # what the good body made; never equal to nothing served
    my $good0 = $list0 =~ /"symbol":"AAPL"/ ? $list0 : 'the good records';

    is(join(',', map { $_->{symbol} } @{ $t->json_decode($list0) // [] }),
       'AAPL', "$zone: the good body is served first");
    ok(($st1->{failures} // 0) > ($st0->{failures} // 0),
       "$zone: $what is a failed refresh");
    ok(($st1->{consecutiveFailures} // 0) >= 1,
       "$zone: $what counts as consecutive failure");
    like($st1->{lastError} // '', qr/\S/, "$zone: $what sets lastError");
    is($list1, $good0, "$zone: $what keeps the records exactly");
    is($etag1, $etag0 ne '' ? $etag0 : 'an etag',
       "$zone: $what keeps the etag");
    like($t->read_file('error.log'),
         qr/\[error\] .*stockprice zone "$zone": .*keeping 1 symbol/,
         "$zone: $what is logged as a failed refresh");

    # the empty body: a success that changes nothing

    put("$zone.json", $empty);

    my $r = $st1->{refreshes} // 0;

    ok(waiting(sub { (st($zone)->{refreshes} // 0) > $r }, 3),
       "$zone: $empty is a successful refresh");

    my ($st2, $list2, $etag2) = snapshot($zone);

    is($st2->{consecutiveFailures}, 0, "$zone: $empty ends the failures");
    is($list2, $good0, "$zone: $empty changes no record");
    is($etag2, $etag0 ne '' ? $etag0 : 'an etag',
       "$zone: $empty keeps the etag");
}

# no secret in the log, the status or an answer

{
    my @texts = ($t->read_file('error.log'));

    for my $z (@zones) {
        push @texts, map { $t->get($_)->{content} // '' }
                         "/api/$z", "/st/$z";
    }

    for my $s ([ 'the Finnhub key', $fh_key ],
               [ 'the Alpha Vantage key', $av_key ],
               [ 'the Alpaca key id', $ap_id ],
               [ 'the Alpaca secret', $ap_secret ])
    {
        ok(!grep({ index($_, $s->[1]) >= 0 } @texts),
           "$s->[0] is in neither the log nor an answer");
    }

    unlike($t->read_file('error.log'), qr/BEGIN|PRIVATE/,
           'no certificate or key in the log');
}

$t->done;

# 10. malformed pointers and units: nginx -t says which and where

my $base = 'stockprice_poll https://127.0.0.1:1/prices zone=s:64k';

for my $case (
    [ 'records without a leading "/"', "$base records=tickers",
      qr/(?=[^\n]*(?i:pointer))[^\n]*"records=tickers"/ ],
    [ 'a "~" escape other than ~0 and ~1', "$base symbol_field=/a~2b",
      qr/(?=[^\n]*(?i:pointer))[^\n]*"symbol_field=\/a~2b"/ ],
    [ 'an unknown time unit', "$base time_field=/t:sec",
      qr/(?=[^\n]*(?i:unit))[^\n]*"time_field=\/t:sec"/ ],
    [ 'an empty time unit', "$base time_field=/t:",
      qr/(?=[^\n]*(?i:unit))[^\n]*"time_field=\/t:"/ ],
    [ '$symbol without symbols',
      'stockprice_poll "https://127.0.0.1:1/q?s=$symbol" zone=s:64k',
      qr/"\$symbol" requires "symbols" or "symbols_file"/ ],
    [ '$symbol and $symbols together',
      'stockprice_poll "https://127.0.0.1:1/q?s=$symbol&l=$symbols"'
      . ' zone=s:64k symbols=A,B',
      qr/(?=[^\n]*(?:together|both))[^\n]*"\$symbols?"/ ],
)
{
    my ($name, $http, $re) = @$case;

    $t->config_fails($name, "$http;", $re);
}

# every unit and pointer form the contract names passes

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
events { }
http {
    stockprice_poll https://127.0.0.1:1/a zone=a:64k time_field=/t:iso;
    stockprice_poll https://127.0.0.1:1/b zone=b:64k time_field=/t:s;
    stockprice_poll https://127.0.0.1:1/c zone=c:64k time_field=/t:ms;
    stockprice_poll https://127.0.0.1:1/d zone=d:64k time_field=/t:us;
    stockprice_poll https://127.0.0.1:1/e zone=e:64k time_field=/t:ns;
    stockprice_poll https://127.0.0.1:1/f zone=f:64k time_field=/a~0b/0/c~1d;
    stockprice_poll "https://127.0.0.1:1/g?s=$symbol" zone=g:64k
                    symbols=A,B "records=/Global Quote"
                    "symbol_field=/01. symbol" "price_field=/05. price";
}
EOF

is(($t->test_config)[0], 0,
   'every time unit and pointer form passes nginx -t');

done_testing;
