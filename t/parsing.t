#!/usr/bin/perl

# Upstream bodies and configuration files read right (CONTRACT sections
# 2, 3.1, 3.3 and 3.3a): a lone surrogate escape skips one record, not the
# refresh; a valueDateTime that is present but not valid is replaced by the
# measurement time and counted (status replacedValueTimes, one warn line
# per refresh); expiresIn as a numeric string; a byte-order mark at the
# start of the credentials file is dropped, a credentials file that is not
# UTF-8 is refused; every double is served in its shortest form; and
# symbols_file=, with its configuration errors.

use strict;
use warnings;

use Test::More;
use JSON::PP;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $json = JSON::PP->new->utf8;

my $P = 'stockprice_poll http://127.0.0.1:1/prices';
my $A = 'auth=http://127.0.0.1:1/auth';
my $D = '%%TESTDIR%%';


###############################################################################
# configuration errors: files that nginx -t must refuse

$t->write_file('latin1.cred', "caf\xe9:pw\n");
$t->write_file('good.syms', "A\nB\n");
$t->write_file('empty-element.syms', "# symbols\nMSFT\nA,,B\nSAP\n");
$t->write_file('long.syms', "MSFT\n" . ('X' x 33) . "\n");
$t->write_file('comments.syms', "# no symbols here\r\n\r\n#  nor here\n\n");

my @cases = (
    [ 'credentials file not UTF-8',
      "$P zone=s:1m $A credentials=$D/latin1.cred;",
      qr/credentials file ".*latin1\.cred" is not UTF-8/, 4 ],
    [ 'symbols file missing', "$P zone=s:1m symbols_file=$D/nope.syms;",
      qr/cannot open symbols file/, 4 ],
    [ 'symbols file with an empty element',
      "$P zone=s:1m\n    symbols_file=$D/empty-element.syms;",
      qr/invalid symbol "" in symbols file/, 5 ],
    [ 'symbols file with a 33-byte symbol',
      "$P zone=s:1m symbols_file=$D/long.syms;",
      qr/invalid symbol "X{33}" in symbols file/, 4 ],
    [ 'symbols file with comments only',
      "$P zone=s:1m symbols_file=$D/comments.syms;",
      qr/symbols file ".*comments\.syms" has no symbols/, 4 ],
    [ 'symbols and symbols_file together',
      "$P zone=s:1m symbols=A symbols_file=$D/good.syms;",
      qr/"symbols" and "symbols_file" cannot both be set/, 4 ],
);

for my $case (@cases) {
    my ($name, $lines, $re, $line) = @$case;

    write_conf($lines);

    my ($rc, $out) = $t->test_config;

    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $re, "$name: says what is wrong");
    like($out, qr/nginx\.conf:$line\b/, "$name: names nginx.conf:$line");
}

write_conf("$P zone=s:1m symbols_file=$D/good.syms;");
my ($rc, $out) = $t->test_config;
is($rc, 0, 'a valid symbols_file passes nginx -t') or diag $out;


###############################################################################
# one nginx, four feeds:
#   stocks  literal bodies from $up (no auth)
#   bom     auth against $bom with a credentials file that starts with a BOM
#   long, short  auth against locations of this nginx that answer expiresIn
#           as a string ("3600", "2"); prices from $plain (any token)

my $up = FakeUpstream->start($t, port => $t->port(1));
my $bom = FakeUpstream->start($t, port => $t->port(2), name => 'bom');
my $plain = FakeUpstream->start($t, port => $t->port(3), name => 'plain');

$t->write_file('credentials.bom', "\xef\xbb\xbf" . $bom->credentials);
$t->write_file('credentials.plain', "user:pass\n");

# $up fails until the first phase: no record in the zone yet, and a known
# starting point for the counters

$up->control({ mode => 'status', status => 503, auth => 0 });
$plain->control({ auth => 0 });

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 256; }
http {
    %%TEMPS%%
    access_log off;
    log_format auth '$msec $uri';

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=300ms timeout=2s;

    stockprice_poll http://127.0.0.1:%%PORT_2%%/prices zone=bom:64k
                    interval=1s timeout=2s
                    auth=http://127.0.0.1:%%PORT_2%%/auth
                    credentials=%%TESTDIR%%/credentials.bom;

    stockprice_poll http://127.0.0.1:%%PORT_3%%/prices zone=long:64k
                    interval=300ms timeout=2s
                    auth=http://127.0.0.1:%%PORT_0%%/auth/long
                    credentials=%%TESTDIR%%/credentials.plain;

    stockprice_poll http://127.0.0.1:%%PORT_3%%/prices zone=short:64k
                    interval=300ms timeout=2s
                    auth=http://127.0.0.1:%%PORT_0%%/auth/short
                    credentials=%%TESTDIR%%/credentials.plain;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        default_type application/json;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
        location = /status/bom { stockprice_status bom; }
        location = /status/long { stockprice_status long; }
        location = /status/short { stockprice_status short; }

        location = /auth/long {
            access_log %%TESTDIR%%/auth.log auth;
            return 200 '{"token":"tok-long","expiresIn":"3600"}';
        }

        location = /auth/short {
            access_log %%TESTDIR%%/auth.log auth;
            return 200 '{"token":"tok-short","expiresIn":"2"}';
        }
    }
}
EOF

$t->run;

ok($t->wait_status('failures', 1), 'stocks: first refresh failed (503)');


# each phase: from a failing upstream (no refresh in flight can count), a
# literal body until two refreshes took it (or one failed), then failing
# again; what changed between is that body's doing alone, and the number
# of successful refreshes in between is the number of times it was applied

sub fence {
    $up->control({ mode => 'status', status => 503, auth => 0 });

    my $f = $t->status->{failures} // 0;

    return $t->wait_for(sub { ($t->status->{failures} // 0) > $f }, 10);
}

sub phase {
    my ($body) = @_;

    my $log0 = length $t->read_file('error.log');
    my $s0 = $t->status;

    $up->control({ mode => 'body', body => $body, auth => 0 });

    $t->wait_for(sub {
        my $s = $t->status;
        return ($s->{refreshes} // 0) >= ($s0->{refreshes} // 0) + 2
               || ($s->{failures} // 0) >= ($s0->{failures} // 0) + 2;
    }, 10);

    ok(fence(), 'stocks: upstream failing again');

    my $s1 = $t->status;
    my $log = substr $t->read_file('error.log'), $log0;
    my $r = $t->get('/api/StockPrice');
    my $list = eval { $json->decode($r->{content}) } // [];

    my %d = map { $_ => ($s1->{$_} // 0) - ($s0->{$_} // 0) }
            qw(refreshes failures skippedRecords replacedValueTimes);

    return {
        n       => $d{refreshes},
        delta   => \%d,
        after   => $s1,
        log     => $log,
        raw     => $r->{content},
        by      => { map { $_->{symbol} => $_ } @$list },
    };
}

# the counts of the warn lines about value times in a piece of the log

sub value_time_warnings {
    my ($log) = @_;

    return map {
        /\[warn\] .*stockprice zone "stocks": .*\b(\d+) value times? not valid/
        ? $1 : ()
    } split /\n/, $log;
}


# invalid value times, and prices that only the shortest form keeps

my $p = phase(<<'JSON');
[
 {"symbol":"VT1","price":1,"valueDateTime":"2024-05-01 10:53:37Z"},
 {"symbol":"VT2","price":2,"valueDateTime":"yesterday"},
 {"symbol":"VT3","price":3,"valueDateTime":1714560817},
 {"symbol":"VT4","price":4,"valueDateTime":"2024-05-01T10:53:37.2982063Z"},
 {"symbol":"VT5","price":5},
 {"symbol":"P1","price":5e-324},
 {"symbol":"P2","price":2.2250738585072014e-308},
 {"symbol":"P3","price":1e-320},
 {"symbol":"P4","price":14.7052516685914},
 {"symbol":"P5","price":187.3},
 {"symbol":"P6","price":100}
]
JSON

my $n = $p->{n};
my $by = $p->{by};
my $raw = $p->{raw} // '';

ok($n >= 1, "value times body applied ($n refreshes)");

for my $s (qw(VT1 VT2 VT3)) {
    ok($by->{$s} && defined $by->{$s}{valueDateTime}
       && $by->{$s}{valueDateTime} eq $by->{$s}{measurementTimeStamp},
       "$s: invalid valueDateTime replaced by the measurement time");
}

is($by->{VT4}{valueDateTime}, '2024-05-01T10:53:37.2982063Z',
   'VT4: valid valueDateTime kept');
ok($by->{VT5}
   && ($by->{VT5}{valueDateTime} // '') eq $by->{VT5}{measurementTimeStamp},
   'VT5: missing valueDateTime is the measurement time');

like($t->get('/status')->{content} // '', qr/"replacedValueTimes":\d+[,}]/,
     'status replacedValueTimes is a JSON number');
ok($n >= 1 && $p->{delta}{replacedValueTimes} == 3 * $n,
   "replacedValueTimes grows by 3 per refresh "
   . "($p->{delta}{replacedValueTimes} for $n)");
is($p->{delta}{skippedRecords}, 0, 'invalid value times are not skips');

my @w = value_time_warnings($p->{log});
ok($n >= 1 && @w == $n, 'one warn line about value times per refresh ('
   . scalar(@w) . " for $n)");
ok(@w && !grep({ $_ != 3 } @w), 'the warn line says 3 value times');

my $prom = $t->get('/status?format=prometheus')->{content} // '';
my ($pv) = $prom =~
    /^stockprice_replaced_value_times_total\{zone="stocks"\} (\d+)$/m;
ok(defined $pv && $pv == ($p->{after}{replacedValueTimes} // -1),
   'prometheus stockprice_replaced_value_times_total');

like($raw, qr/"symbol":"P1","price":5e-324[,}]/, '5e-324 served as 5e-324');
like($raw, qr/"symbol":"P2","price":2\.2250738585072014e-308[,}]/,
     '2.2250738585072014e-308 kept');
like($raw, qr/"symbol":"P3","price":1e-320[,}]/, '1e-320 served as 1e-320');
like($raw, qr/"symbol":"P4","price":14\.7052516685914[,}]/,
     '14.7052516685914 kept');
like($raw, qr/"symbol":"P5","price":187\.3[,}]/, '187.3 kept');
like($raw, qr/"symbol":"P6","price":100[,}]/, '100 kept');


# lone surrogates: the record is skipped or applied, never the whole body
# refused

$p = phase(<<'JSON');
[
 {"symbol":"GOOD1","price":1},
 {"symbol":"HI\ud800","price":2},
 {"symbol":"LO\udc00X","price":3},
 {"symbol":"NOTE","price":4,"note":"\ud800"},
 {"symbol":"NOTELO","price":4.5,"note":"x\udc00\ud800y"},
 {"symbol":"PAIR","price":5,"note":"\ud83d\ude00"},
 {"symbol":"EMO\ud83d\ude00","price":6},
 {"symbol":"BADP","price":"1\ud800"},
 {"symbol":"VDT","price":7,"valueDateTime":"2024-05-01T10:53:37\ud800Z"},
 {"symbol":"GOOD2","price":8}
]
JSON

$n = $p->{n};
$by = $p->{by};

ok($n >= 1,
   "a body with lone surrogates refreshes ($n refreshes, "
   . "last error: " . ($p->{after}{lastError} // 'none') . ')');
ok($by->{GOOD1} && $by->{GOOD2}, 'the other records applied');
ok($by->{NOTE} && $by->{NOTELO},
   'lone surrogate in an ignored field: record applied');
ok($by->{PAIR}, 'surrogate pair in an ignored field: record applied');
ok($by->{"EMO\x{1f600}"}, 'surrogate pair in a symbol: record applied');
ok(!(grep { /^(HI|LO)/ } keys %$by),
   'lone surrogate in a symbol: record skipped');
ok(!$by->{BADP}, 'lone surrogate in a price: record skipped');
ok($by->{VDT}
   && ($by->{VDT}{valueDateTime} // '') eq $by->{VDT}{measurementTimeStamp},
   'lone surrogate in valueDateTime: kept with the measurement time');
is($by->{GOOD1} && $by->{GOOD1}{price}, 1, 'GOOD1 price');

ok($n >= 1 && $p->{delta}{skippedRecords} == 3 * $n,
   "3 records skipped per refresh ($p->{delta}{skippedRecords} for $n)");
ok($n >= 1 && $p->{delta}{replacedValueTimes} == $n,
   "1 value time replaced per refresh ($p->{delta}{replacedValueTimes} "
   . "for $n)");

@w = value_time_warnings($p->{log});
ok($n >= 1 && @w == $n && !grep({ $_ != 1 } @w),
   'one warn line per refresh: 1 value time not valid ('
   . scalar(@w) . " for $n)");
unlike($p->{log}, qr/stockprice zone "stocks": .*not valid JSON/,
       'no "not valid JSON" failure');


# a byte-order mark before the credentials is not part of the user name

ok($t->wait_for(sub { $bom->stats->{auth} >= 1 }, 5), 'bom: auth called');

my @auth = grep { $_->{path} eq '/auth' } @{ $bom->stats->{requests} // [] };
my $cred = eval { $json->decode($auth[0]{body}) } // {};

ok(($cred->{username} // '') eq 'alice',
   'bom: username sent without the BOM')
    or diag('sent ' . JSON::PP->new->ascii->allow_nonref
                      ->encode($cred->{username}));
is($cred->{password}, 'pa"ss:word', 'bom: password sent as written');

$t->wait_for(sub {
    my $s = $t->status('/status/bom');
    ($s->{refreshes} // 0) >= 1 || ($s->{failures} // 0) >= 1;
}, 5);
my $st = $t->status('/status/bom');
ok($st->{authenticated} && $st->{refreshes} >= 1,
   'bom: authenticated and refreshing');


# expiresIn as a numeric string

ok($t->wait_status('refreshes', 4, 10, '/status/long'),
   'long: refreshing');
$st = $t->status('/status/long');
ok($st->{authenticated}, 'expiresIn "3600": authenticated');
is($st->{authCalls}, 1, 'expiresIn "3600": one auth call for '
   . "$st->{refreshes} refreshes");

ok($t->wait_status('authCalls', 2, 6, '/status/short'),
   'expiresIn "2": authenticated again');
$st = $t->status('/status/short');
ok($st->{authenticated}, 'expiresIn "2": authenticated');
is($st->{failures}, 0, 'expiresIn "2": no failed refresh');

my @short = map { /^(\S+) \/auth\/short$/ ? $1 : () }
            split /\n/, $t->read_file('auth.log');
ok(@short >= 2 && $short[1] - $short[0] < 3,
   'expiresIn "2": renewed within about 2 s ('
   . (@short >= 2 ? sprintf('%.2f s', $short[1] - $short[0]) : 'no renewal')
   . ')');

$t->stop;


###############################################################################
# symbols_file=: 1,000 symbols, one per line and comma-separated, with a
# comment, a blank line and CRLF line ends

my @want = map { sprintf 'S%04d', $_ } 1 .. 1000;
my @other = map { sprintf 'X%04d', $_ } 1 .. 10;

my $file = "# the symbols of the test\r\n"
    . join('', map { "$_\r\n" } @want[0 .. 899])
    . "\r\n"
    . join('', map { join(',', @want[$_ .. $_ + 9]) . "\r\n" }
                   grep { $_ % 10 == 0 } 900 .. 999);

$t->write_file('symbols.txt', $file);

$up->control({ symbols => [ @other[0 .. 4], @want, @other[5 .. 9] ],
               filter => 0, auth => 0 });

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=syms:2m
                    interval=1s timeout=3s
                    symbols_file=%%TESTDIR%%/symbols.txt;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice syms; }
        location = /status { stockprice_status syms; }
    }
}
EOF

my $up_prices = $up->stats->{prices} // 0;
my $started = eval { $t->run; 1 };

ok($started, 'nginx starts with symbols_file=') or diag $@;
ok($started && $t->wait_status('refreshes', 1, 10),
   'symbols_file: refreshed');

my $q = ($up->stats->{prices} // 0) > $up_prices
        ? $up->stats->{last_prices}{query} // '' : '';
my ($asked) = $q =~ /(?:^|&)symbols=([^&]*)/;
my @asked = split /,/, FakeUpstream::uri_unescape($asked // '');

is_deeply([sort @asked], \@want,
          'symbols_file: the 1,000 symbols requested, each once');

my $list = $started ? $t->get_json('/api/StockPrice') // [] : [];
my @served = map { $_->{symbol} } @$list;

is_deeply(\@served, \@want, 'symbols_file: exactly those 1,000 served');
ok(@served && !(grep { /^X/ } @served),
   'symbols_file: records of other symbols dropped');

$t->done;

done_testing;


sub write_conf {
    my ($lines) = @_;

    # the case's lines start at line 4
    $t->write_config(<<"EOF");
%%MODULE%%
events { }
http {
$lines
%%TEMPS%%
}
%%BASE%%
EOF
}
