#!/usr/bin/perl

# OAuth2 client credentials (CONTRACT section 3.1, RFC 6749 4.4): the token
# request checked byte by byte (a form body with the scope, HTTP Basic of
# the form-urlencoded id and secret, a secret holding ":", "%", "+" and
# non-ASCII), the bearer token used for prices, a token_type other than
# Bearer refused, renewal before expires_in runs out, one re-auth on 401;
# the client secret never logged; configuration errors.

use strict;
use warnings;

use Test::More;
use MIME::Base64 qw(encode_base64);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $id = 'my client';
my $secret = "s:e%c+r\xc3\xa9t";

my $t = StockTest->new;
my $up = FakeUpstream->start($t, oauth => 1, users => [[ $id, $secret ]]);

$t->write_file('client', $up->credentials);

$up->control({ expires => 2 });

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:64k
                    interval=300ms timeout=2s
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    auth_type=client_credentials
                    "scope=read:prices quotes"
                    credentials=%%TESTDIR%%/client;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF2

$t->run;

ok($t->wait_status('refreshes', 2), 'refreshes with an OAuth2 token');

my @req = @{ $up->stats->{requests} };
my ($auth) = grep { $_->{path} eq '/auth' } @req;

# application/x-www-form-urlencoded by hand: what RFC 6749 appendix B says

sub form {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~ ])/sprintf '%%%02X', ord $1/ge;
    $s =~ tr/ /+/;
    return $s;
}

is($auth->{method}, 'POST', 'the token request is a POST');
is($auth->{headers}{'content-type'}, 'application/x-www-form-urlencoded',
   'form content type');
is($auth->{body}, 'grant_type=client_credentials&scope=read%3Aprices+quotes',
   'the form body, scope encoded');
is($auth->{headers}{authorization},
   'Basic ' . encode_base64(form($id) . ':' . form($secret), ''),
   'HTTP Basic of the form-urlencoded id and secret');
is(form($secret), 's%3Ae%25c%2Br%C3%A9t', '(the secret, encoded)');
is($auth->{scope}, 'read:prices quotes', 'the upstream read the scope');

my ($prices) = grep { $_->{path} eq '/prices' } @req;
my $token = $up->stats->{issued}[0];

is($prices->{headers}{authorization}, "Bearer $token",
   'prices with the access token as a bearer token');

ok($t->wait_for(sub { $up->stats->{auth} >= 3 }, 8),
   'renewed before expires_in (2 s) runs out, again and again');
is($up->stats->{status}{401} // 0, 0, 'no prices request was refused');

# a refused token: one re-auth, then the prices request again

my $n = $up->stats->{auth};
$up->control({ expires => 3600, forget => 1 });

ok($t->wait_for(sub { $up->stats->{auth} > $n }, 5), 're-auth after a 401');
ok($t->wait_status('refreshes', $t->status->{refreshes} + 1),
   'and the next refresh succeeds');

# a token_type other than Bearer is a failed auth

$up->control({ expires => 3600, forget => 2, token_type => 'mac' });

ok($t->wait_for(sub {
    ($t->status->{lastError} // '') =~ /auth answer has no valid token/;
}, 5), 'token_type "mac" refused');

$up->control({ expires => 3600, forget => 3, token_type => 'bEaReR' });

my $f = $t->status->{refreshes};
ok($t->wait_status('refreshes', $f + 1, 8), 'token_type in any case');

my $log = $t->read_file('error.log');
my $enc = form($secret);
my $b64 = encode_base64(form($id) . ':' . $enc, '');

ok(index($log, $secret) < 0 && index($log, $enc) < 0
   && index($log, $b64) < 0, 'the client secret is not in the log');
ok(!grep({ index($log, $_) >= 0 } @{ $up->stats->{issued} }),
   'no access token in the log');

$t->done;

# configuration errors

my $base = 'stockprice_poll http://127.0.0.1:1/prices zone=s:64k';
my $c = 'credentials=%%TESTDIR%%/client';

for my $case (
    [ 'auth_type unknown',
      "auth=http://127.0.0.1:1/auth auth_type=saml $c",
      qr/invalid auth_type "auth_type=saml": must be login or client_cred/ ],
    [ 'auth_type without auth', 'auth_type=client_credentials',
      qr/"auth_type" requires "auth"/ ],
    [ 'scope with login', "auth=http://127.0.0.1:1/auth scope=x $c",
      qr/"scope" requires "auth_type=client_credentials"/ ],
    [ 'scope empty',
      "auth=http://127.0.0.1:1/auth auth_type=client_credentials scope= $c",
      qr/invalid scope "scope="/ ],
)
{
    my ($name, $params, $re) = @$case;

    $t->config_fails($name, "$base $params;", $re);
}

done_testing;
