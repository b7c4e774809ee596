#!/usr/bin/perl

# TLS towards the upstream (CONTRACT sections 2 and 3.2): host names
# checked, the system's CA store by default, ssl_trusted_certificate=
# instead of it, ssl_verify=off, mutual TLS with ssl_certificate= and
# ssl_certificate_key=; a TLS failure logs curl's reason; the files are
# checked when the configuration is loaded; TLS sessions are resumed on
# a new connection.  The upstreams are HTTPS
# servers of the test's own nginx (its demo feed), with certificates of a
# CA that the test makes with openssl.

use strict;
use warnings;

use Test::More;

use lib 't/lib';
use StockTest;

my $t = StockTest->new;
my $d = $t->dir;

$t->make_ca('ca');
$t->make_ca('other-ca');
$t->make_ca('client-ca');
$t->make_cert('server', 'ca', 'IP:127.0.0.1');
$t->make_cert('wrong', 'ca', 'DNS:wrong.example');
$t->make_cert('client', 'client-ca', 'DNS:client.example');

# TLS handshakes under valgrind take seconds
my $poll = 'interval=300ms timeout=' . $t->limit(2) . 's';

$t->write_config(<<"EOF2");
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll https://127.0.0.1:%%PORT_2%%/feed/prices zone=good:64k
                    $poll ssl_trusted_certificate=%%TESTDIR%%/ca.pem;
    stockprice_poll https://127.0.0.1:%%PORT_2%%/feed/prices zone=system:64k
                    $poll;
    stockprice_poll https://127.0.0.1:%%PORT_2%%/feed/prices zone=other:64k
                    $poll ssl_trusted_certificate=%%TESTDIR%%/other-ca.pem;
    stockprice_poll https://127.0.0.1:%%PORT_3%%/feed/prices zone=name:64k
                    $poll ssl_trusted_certificate=%%TESTDIR%%/ca.pem;
    stockprice_poll https://127.0.0.1:%%PORT_3%%/feed/prices zone=off:64k
                    $poll ssl_verify=off;
    stockprice_poll https://127.0.0.1:%%PORT_4%%/feed/prices zone=mtls:64k
                    $poll ssl_trusted_certificate=%%TESTDIR%%/ca.pem
                    ssl_certificate=%%TESTDIR%%/client.pem
                    ssl_certificate_key=%%TESTDIR%%/client.key;
    stockprice_poll https://127.0.0.1:%%PORT_4%%/feed/prices zone=nocert:64k
                    $poll ssl_trusted_certificate=%%TESTDIR%%/ca.pem;
    stockprice_poll https://127.0.0.1:%%PORT_5%%/feed/prices zone=resume:64k
                    $poll ssl_trusted_certificate=%%TESTDIR%%/ca.pem;

    log_format tls '\$connection \$ssl_session_reused \$ssl_protocol';

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location = /good { stockprice_status good; }
        location = /system { stockprice_status system; }
        location = /other { stockprice_status other; }
        location = /name { stockprice_status name; }
        location = /off { stockprice_status off; }
        location = /mtls { stockprice_status mtls; }
        location = /nocert { stockprice_status nocert; }
        location = /resume { stockprice_status resume; }
    }

    server {
        listen 127.0.0.1:%%PORT_2%% ssl;
        ssl_certificate %%TESTDIR%%/server.pem;
        ssl_certificate_key %%TESTDIR%%/server.key;

        location /feed/ { stockprice_demo_feed; }
    }

    server {
        listen 127.0.0.1:%%PORT_3%% ssl;
        ssl_certificate %%TESTDIR%%/wrong.pem;
        ssl_certificate_key %%TESTDIR%%/wrong.key;

        location /feed/ { stockprice_demo_feed; }
    }

    server {
        listen 127.0.0.1:%%PORT_4%% ssl;
        ssl_certificate %%TESTDIR%%/server.pem;
        ssl_certificate_key %%TESTDIR%%/server.key;
        ssl_verify_client on;
        ssl_client_certificate %%TESTDIR%%/client-ca.pem;

        location /feed/ { stockprice_demo_feed; }
    }

    # a new connection for every request: each refresh shakes hands again,
    # and resumes the session of the one before
    server {
        listen 127.0.0.1:%%PORT_5%% ssl;
        ssl_certificate %%TESTDIR%%/server.pem;
        ssl_certificate_key %%TESTDIR%%/server.key;
        ssl_session_cache shared:sessions:1m;
        keepalive_timeout 0;
        access_log %%TESTDIR%%/resume.log tls;

        location /feed/ { stockprice_demo_feed; }
    }
}
EOF2

$t->run;

for my $zone (qw(good off mtls)) {
    ok($t->wait_status('refreshes', 2, 10, "/$zone"),
       "$zone: refreshes over HTTPS");
    my $st = $t->status("/$zone");
    is($st->{failures}, 0, "$zone: no failure");
    is($st->{symbols}, 3, "$zone: the feed's 3 symbols");
}

# a failure: the reason curl gives, in status and in one error line each

my %reason = (
    system => qr/SSL certificate problem: unable to get local issuer/,
    other  => qr/SSL certificate problem: unable to get local issuer/,
    name   => qr/SSL: no alternative certificate subject name matches target host name '127\.0\.0\.1'/,
    nocert => qr/upstream answered 400/,
);

for my $zone (sort keys %reason) {
    ok($t->wait_status('failures', 2, 10, "/$zone"),
       "$zone: refreshes fail");
    my $st = $t->status("/$zone");
    is($st->{refreshes}, 0, "$zone: no refresh succeeds");
    like($st->{lastError} // '', $reason{$zone}, "$zone: lastError says why");
    like($t->read_file('error.log'),
         qr/\[error\] .*stockprice zone "$zone": .*$reason{$zone}.*, keeping 0 symbols/,
         "$zone: the error line says why");
}

# TLS sessions are kept across refreshes: with the connection closed after
# every answer, all handshakes but the first resume

ok($t->wait_status('refreshes', 4, 10, '/resume'), 'resume: four refreshes');

my @hand = map { [ split ' ' ] } split /\n/, $t->read_file('resume.log');
my %conn = map { $_->[0] => 1 } @hand;

ok(@hand >= 4 && keys %conn == @hand,
   'resume: a new connection for each request (' . @hand . ')');
is($hand[0][1], '.', 'resume: the first handshake is a full one');
is(scalar(grep { $_->[1] eq 'r' } @hand[1 .. $#hand]), $#hand,
   "resume: the other handshakes resume the session ($hand[-1][2])");

unlike($t->read_file('error.log'), qr/BEGIN|PRIVATE/,
       'no certificate or key in the log');

$t->done;

# the files are read and checked by nginx -t

$t->write_file('garbage.pem', "this is not PEM\n");
$t->openssl("ec -in $d/client.key -out $d/locked.key -aes256 -passout pass:x");

my $base = 'stockprice_poll https://127.0.0.1:1/prices zone=s:64k';

my @bad = (
    [ 'trusted file missing', "ssl_trusted_certificate=$d/nope.pem",
      qr/cannot open trusted certificate file ".*nope\.pem"/ ],
    [ 'trusted file not PEM', "ssl_trusted_certificate=$d/garbage.pem",
      qr/trusted certificate file ".*garbage\.pem" holds no PEM certificate/ ],
    [ 'certificate not PEM',
      "ssl_certificate=$d/garbage.pem ssl_certificate_key=$d/client.key",
      qr/certificate file ".*garbage\.pem" holds no PEM certificate/ ],
    [ 'key not PEM',
      "ssl_certificate=$d/client.pem ssl_certificate_key=$d/garbage.pem",
      qr/certificate key file ".*garbage\.pem" holds no PEM private key/ ],
    [ 'key with a passphrase',
      "ssl_certificate=$d/client.pem ssl_certificate_key=$d/locked.key",
      qr/holds no PEM private key \(or one with a passphrase\)/ ],
    [ 'certificate without key', "ssl_certificate=$d/client.pem",
      qr/"ssl_certificate" requires "ssl_certificate_key"/ ],
    [ 'key without certificate', "ssl_certificate_key=$d/client.key",
      qr/"ssl_certificate_key" requires "ssl_certificate"/ ],
    [ 'key of another certificate',
      "ssl_certificate=$d/client.pem ssl_certificate_key=$d/server.key",
      qr/"ssl_certificate_key" does not match "ssl_certificate"/ ],
    [ 'ssl_verify neither on nor off', 'ssl_verify=maybe',
      qr/invalid ssl_verify "ssl_verify=maybe": must be on or off/ ],
);

for my $case (@bad) {
    my ($name, $params, $re) = @$case;

    $t->config_fails($name, "$base $params;", $re);
}

$t->write_config(<<"EOF2");
%%MODULE%%
%%BASE%%
events { }
http {
    $base ssl_verify=off ssl_trusted_certificate=$d/ca.pem
        ssl_certificate=$d/client.pem ssl_certificate_key=$d/client.key;
}
EOF2

is(($t->test_config)[0], 0, 'all the TLS parameters together pass nginx -t');

done_testing;
