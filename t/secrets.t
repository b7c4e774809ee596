#!/usr/bin/perl

# Static keys (CONTRACT sections 3.1-3.3a): secret=NAME:FILE read when the
# configuration is loaded, $NAME in the URL (percent-encoded) and in
# header= values (verbatim), ${NAME} before a letter, $symbols in the URL
# (each symbol encoded, commas kept, no ?symbols= appended); a secret never
# in the log, the status or a response, not even through an error line;
# every placeholder that names nothing refused by nginx -t.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $key = "k3y/+&=\xc3\xa9 x";      # what a URL must encode
my $id = 'PKTEST1';
my $other = "s3cr3t:with:colons";

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$up->control({ auth => 0, symbols => [ 'AAPL', 'BRK.B', 'MSFT' ] });

$t->write_file('api.key', "$key\r\n");
$t->write_file('key.id', "$id\n");
$t->write_file('key.secret', $other);
$t->write_file('host.key', "hostsecret42\n");

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll "http://127.0.0.1:%%PORT_1%%/prices?apikey=$key&v=${key}2"
                    zone=query:64k interval=200ms timeout=2s
                    symbols=MSFT,AAPL
                    secret=key:%%TESTDIR%%/api.key;

    stockprice_poll "http://127.0.0.1:%%PORT_1%%/prices?list=$symbols"
                    zone=headers:64k interval=200ms timeout=2s
                    symbols=AAPL,BRK.B
                    secret=id:%%TESTDIR%%/key.id
                    secret=sec:%%TESTDIR%%/key.secret
                    "header=APCA-API-KEY-ID: $id"
                    "header=APCA-API-SECRET-KEY:$sec"
                    "header=X-Both: ${id}/$sec";

    # curl's reason names the host: the error line must not
    stockprice_poll "http://$hk.invalid/prices" zone=host:64k
                    interval=200ms timeout=2s
                    secret=hk:%%TESTDIR%%/host.key;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location = /host { stockprice_status host; }
        location /query/api/StockPrice { stockprice query; }
        location /headers/api/StockPrice { stockprice headers; }
        location = /query { stockprice_status query; }
        location = /headers { stockprice_status headers; }
    }
}
EOF2

$t->run;

ok($t->wait_status('refreshes', 1, 10, '/query'), 'query: refreshes');
ok($t->wait_status('refreshes', 1, 10, '/headers'), 'headers: refreshes');

my @req = grep { $_->{path} eq '/prices' } @{ $up->stats->{requests} };
my ($q) = grep { $_->{query} =~ /^apikey=/ } @req;
my ($h) = grep { $_->{query} =~ /^list=/ } @req;

is($q->{query},
   'apikey=k3y%2F%2B%26%3D%C3%A9%20x&v=k3y%2F%2B%26%3D%C3%A9%20x2'
   . '&symbols=MSFT,AAPL',
   'a secret in the URL: percent-encoded, ${key} before a letter, '
   . 'symbols= appended');
is($h->{query}, 'list=AAPL,BRK.B',
   '$symbols: the list, no symbols= appended');
is($h->{headers}{'apca-api-key-id'}, $id, 'a secret in a header');
is($h->{headers}{'apca-api-secret-key'}, $other,
   'a second header, no blank after the colon');
is($h->{headers}{'x-both'}, "$id/$other", 'two secrets in one header');
ok(!defined $q->{headers}{'apca-api-key-id'},
   'headers belong to their feed only');

is(join(',', map { $_->{symbol} }
            @{ $t->get_json('/headers/api/StockPrice') // [] }),
   'AAPL,BRK.B', 'the symbols asked for are served');

# an upstream that fails: the error line and lastError name no secret

$up->control({ auth => 0, mode => 'status', status => 500 });

ok($t->wait_status('failures', 1, 10, '/query'), 'a failed refresh');
ok($t->wait_status('failures', 1, 10, '/host'), 'an unresolvable host');

like($t->status('/host')->{lastError} // '',
     qr/Could not resolve host: \$hk\.invalid/,
     "curl's reason with \$hk in place of the secret");
like($t->read_file('error.log'),
     qr/\[error\] .*zone "host": .*resolve host: \$hk\.invalid/,
     'the error line too');

$up->control({ auth => 0, symbols => [ 'AAPL', 'BRK.B', 'MSFT' ] });

my @texts = ($t->read_file('error.log'));

for my $u ('/query', '/headers', '/host', '/query/api/StockPrice',
           '/headers/api/StockPrice', '/headers/api/StockPrice/AAPL')
{
    push @texts, $t->get($u)->{content} // '';
}

my @secrets = ($key, $id, $other, 'k3y%2F%2B%26%3D%C3%A9%20x',
               'hostsecret42');

ok(!grep({ my $x = $_; grep { index($x, $_) >= 0 } @secrets } @texts),
   'no secret in the log, the status or an answer');

$t->done;

# placeholders that name nothing, and secret and header mistakes

$t->write_file('cr.key', "a\rb\n");
$t->write_file('empty.key', "\n");

my $P = 'stockprice_poll "http://127.0.0.1:1/prices';
my $S = "secret=key:%%TESTDIR%%/api.key";

for my $case (
    [ 'unknown placeholder in the URL', "$P?k=\$nope\" zone=s:64k $S",
      qr/unknown "\$nope" in ".*": no "secret=nope:FILE"/ ],
    [ 'unknown placeholder in a header',
      "$P\" zone=s:64k $S \"header=X-Key: \$kee\"",
      qr/unknown "\$kee" in "\$kee"/ ],
    [ 'a lone $', "$P?k=\$\" zone=s:64k",
      qr/invalid placeholder in ".*": "\$" must be followed by a name/ ],
    [ 'an unclosed ${', "$P?k=\${key\" zone=s:64k $S",
      qr/invalid placeholder/ ],
    [ '$symbols without symbols', "$P?s=\$symbols\" zone=s:64k",
      qr/"\$symbols" requires "symbols" or "symbols_file"/ ],
    [ '$symbols in a header',
      "$P\" zone=s:64k symbols=A \"header=X-S: \$symbols\"",
      qr/"\$symbols" in "\$symbols": only the URL may hold it/ ],
    [ '$symbol in a header',
      "$P?s=\$symbol\" zone=s:64k symbols=A \"header=X-S: \$symbol\"",
      qr/"\$symbol" in "\$symbol": only the URL may hold it/ ],
    [ 'secret file missing', "$P\" zone=s:64k secret=key:/nonexistent/k",
      qr/cannot open secret file "\/nonexistent\/k"/ ],
    [ 'secret with a CR', "$P\" zone=s:64k secret=key:%%TESTDIR%%/cr.key",
      qr/secret file ".*cr\.key" has an empty first line, or one with a CR/ ],
    [ 'secret empty', "$P\" zone=s:64k secret=key:%%TESTDIR%%/empty.key",
      qr/secret file ".*empty\.key" has an empty first line/ ],
    [ 'secret name', "$P\" zone=s:64k secret=1key:%%TESTDIR%%/api.key",
      qr/invalid secret "secret=1key:.*": must be NAME:FILE/ ],
    [ 'secret named symbols',
      "$P\" zone=s:64k secret=symbols:%%TESTDIR%%/api.key",
      qr/invalid secret ".*": "\$symbols" is the module's/ ],
    [ 'secret twice', "$P\" zone=s:64k $S $S",
      qr/duplicate secret "key"/ ],
    [ 'header without a colon', "$P\" zone=s:64k header=X-Key",
      qr/invalid header "header=X-Key": must be NAME:VALUE/ ],
    [ 'header name with a blank', "$P\" zone=s:64k \"header=X Key: 1\"",
      qr/invalid header "header=X Key: 1"/ ],
)
{
    my ($name, $params, $re) = @$case;

    my $out = $t->config_fails($name, "$params;", $re);
    ok(index($out, $key) < 0, "$name: no secret in what nginx -t says");
}

done_testing;
