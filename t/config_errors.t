#!/usr/bin/perl

# nginx -t refuses every bad configuration of CONTRACT section 2, naming
# the directive or parameter and the file:line.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use StockTest;

my $t = StockTest->new;

$t->write_file('credentials', "user:pass\n");
$t->write_file('nocolon', "userpass\n");
$t->write_file('emptyuser', ":pass\n");

# each case: name, the directive lines (line 4 of nginx.conf onwards),
# the expected message, the line it must name

my $P = 'stockprice_poll http://127.0.0.1:1/prices';
my $C = 'credentials=%%TESTDIR%%';

my @cases = (
    [ 'missing zone', "$P interval=1s;",
      qr/"stockprice_poll" must have "zone" parameter/, 4 ],
    [ 'ftp url', 'stockprice_poll ftp://127.0.0.1/prices zone=s:1m;',
      qr/invalid URL "ftp:/, 4 ],
    [ 'url without scheme', 'stockprice_poll 127.0.0.1/prices zone=s:1m;',
      qr/invalid URL/, 4 ],
    [ 'url without host', 'stockprice_poll http:///prices zone=s:1m;',
      qr/invalid URL/, 4 ],
    [ 'interval 0', "$P zone=s:1m interval=0;",
      qr/invalid interval "interval=0"/, 4 ],
    [ 'interval negative', "$P zone=s:1m interval=-1s;",
      qr/invalid interval "interval=-1s"/, 4 ],
    [ 'interval garbage', "$P zone=s:1m interval=abc;",
      qr/invalid interval "interval=abc"/, 4 ],
    [ 'timeout 0', "$P zone=s:1m timeout=0s;",
      qr/invalid timeout "timeout=0s"/, 4 ],
    [ 'timeout negative', "$P zone=s:1m timeout=-1s;",
      qr/invalid timeout "timeout=-1s"/, 4 ],
    [ 'timeout garbage', "$P zone=s:1m timeout=soon;",
      qr/invalid timeout "timeout=soon"/, 4 ],
    [ 'unknown parameter', "$P zone=s:1m colour=blue;",
      qr/invalid parameter "colour=blue"/, 4 ],
    [ 'parameter given twice', "$P zone=s:1m history=2\n    history=3;",
      qr/duplicate parameter "history=3"/, 5 ],
    [ 'zone given twice', "$P zone=s:1m zone=t:1m;",
      qr/duplicate parameter "zone=t:1m"/, 4 ],
    [ 'zone too small', "$P zone=s:4k;",
      qr/zone "zone=s:4k" is too small/, 4 ],
    [ 'zone just too small', "$P zone=s:31k;",
      qr/zone "zone=s:31k" is too small/, 4 ],
    [ 'zone without size', "$P zone=s;",
      qr/invalid zone size "zone=s"/, 4 ],
    [ 'same zone twice', "$P zone=s:1m;\n$P zone=s:1m;",
      qr/stockprice zone "s" is already declared/, 5 ],
    [ 'auth without credentials',
      "$P zone=s:1m auth=http://127.0.0.1:1/auth;",
      qr/"auth" requires "credentials"/, 4 ],
    [ 'credentials without auth', "$P zone=s:1m $C/credentials;",
      qr/"credentials" requires "auth"/, 4 ],
    [ 'credentials file missing',
      "$P zone=s:1m auth=http://127.0.0.1:1/auth $C/nope;",
      qr/cannot open credentials file ".*nope".*No such file/, 4 ],
    [ 'credentials file without colon',
      "$P zone=s:1m auth=http://127.0.0.1:1/auth $C/nocolon;",
      qr/credentials file ".*nocolon" has no "username:password"/, 4 ],
    [ 'credentials file with empty user',
      "$P zone=s:1m auth=http://127.0.0.1:1/auth $C/emptyuser;",
      qr/credentials file ".*emptyuser" has no "username:password"/, 4 ],
    [ 'credentials file unreadable (a directory)',
      "$P zone=s:1m auth=http://127.0.0.1:1/auth $C/logs;",
      qr/cannot read credentials file ".*logs".*Is a directory/, 4 ],
    [ 'history 0', "$P zone=s:1m history=0;",
      qr/invalid history "history=0"/, 4 ],
    [ 'history 1001', "$P zone=s:1m history=1001;",
      qr/invalid history "history=1001"/, 4 ],
    [ 'history garbage', "$P zone=s:1m history=ten;",
      qr/invalid history "history=ten"/, 4 ],
    [ 'max_size garbage', "$P zone=s:1m max_size=huge;",
      qr/invalid max_size "max_size=huge"/, 4 ],
    [ 'invalid symbol', "$P zone=s:1m symbols=MSFT,,SAP;",
      qr/invalid symbol "" in "symbols=MSFT,,SAP"/, 4 ],
    [ 'stockprice unknown zone',
      "$P zone=s:1m;\nserver { location / {\nstockprice nope; } }",
      qr/unknown stockprice zone "nope" in .*nginx\.conf:6/, undef ],
    [ 'stockprice_status unknown zone',
      "$P zone=s:1m;\nserver { location / {\nstockprice_status nope; } }",
      qr/unknown stockprice zone "nope" in .*nginx\.conf:6/, undef ],
    [ 'stockprice in http context', 'stockprice s;',
      qr/"stockprice" directive is not allowed here/, 4 ],
    [ 'stockprice_poll in a location',
      "server { location / {\n$P zone=s:1m; } }",
      qr/"stockprice_poll" directive is not allowed here/, 5 ],
    [ 'demo feed unknown parameter',
      "server { location / {\nstockprice_demo_feed colour=blue; } }",
      qr/invalid parameter "colour=blue"/, 5 ],
    [ 'demo feed credentials file missing',
      "server { location / {\nstockprice_demo_feed $C/nope; } }",
      qr/cannot open credentials file/, 5 ],
    [ 'demo feed count=0',
      "server { location / {\nstockprice_demo_feed count=0; } }",
      qr/invalid count "count=0"/, 5 ],
    [ 'demo feed count=abc',
      "server { location / {\nstockprice_demo_feed count=abc; } }",
      qr/invalid count "count=abc"/, 5 ],
    [ 'demo feed count over 100000',
      "server { location / {\nstockprice_demo_feed count=100001; } }",
      qr/invalid count "count=100001"/, 5 ],
    [ 'demo feed count with symbols',
      "server { location / {\nstockprice_demo_feed count=5 symbols=A; } }",
      qr/"count" and "symbols" cannot both be set/, 5 ],
);

for my $case (@cases) {
    my ($name, $lines, $re, $line) = @$case;

    write_conf($lines);

    my ($rc, $out) = $t->test_config;

    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $re, "$name: says what is wrong");
    like($out, qr/nginx\.conf:$line\b/, "$name: names nginx.conf:$line")
        if defined $line;
}

# unreadable credentials: root reads anything, so only as another user

SKIP: {
    skip 'running as root: an unreadable file is readable', 2 if $> == 0;

    my $f = $t->write_file('secret', "user:pass\n");
    chmod 0, $f;
    write_conf("$P zone=s:1m auth=http://127.0.0.1:1/auth $C/secret;");
    my ($rc, $out) = $t->test_config;
    isnt($rc, 0, 'unreadable credentials: nginx -t fails');
    like($out, qr/cannot open credentials file.*Permission denied/,
         'unreadable credentials: says so');
}

# and a good configuration passes, zone declared after its use included

write_conf(<<"EOF");
server { listen 127.0.0.1:%%PORT_0%%;
location /a { stockprice late; }
location /s { stockprice_status late; }
location /d/ { stockprice_demo_feed symbols=A,B $C/credentials; } }
stockprice_poll https://127.0.0.1:1/prices?x=1 zone=late:64k interval=500ms
    timeout=1s auth=http://127.0.0.1:1/auth $C/credentials
    symbols=MSFT,AAPL history=1000 max_size=2m;
$P zone=other:32k;
EOF

my ($rc, $out) = $t->test_config;
is($rc, 0, 'a valid configuration passes nginx -t') or diag $out;

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
