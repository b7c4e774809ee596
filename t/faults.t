#!/usr/bin/perl

# Upstream faults not covered by failure.t, each keeping the last good data
# and logging one clear line: connection refused, unresolvable host,
# connect timeout, 404, 401 twice, failed authentication, 5,000 symbols
# into a zone too small for them.  The status counters (JSON and
# Prometheus) move with them, and over the whole run, auth failures
# included, neither the password nor a token reaches a response or the
# info-level error log.

use strict;
use warnings;

use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_file('credentials', $up->credentials);
$t->write_file('wrong', "alice:Wr0ng-pa55word-xyz\n");

# a listener that never accepts, its queue full: the kernel drops further
# SYNs, so a connect to it hangs until the client gives up

my $bh = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                               LocalPort => 0, ReuseAddr => 1)
    or die "cannot listen: $!";
my $bh_port = $bh->sockport;
my @fill = map {
    IO::Socket::INET->new(PeerAddr => "127.0.0.1:$bh_port", Blocking => 0)
} 1 .. 4;

my $probe = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$bh_port",
                                  Timeout => 0.5);
ok(!$probe, 'a connect to the full listener hangs (precondition)');

my $conf = <<'EOF2';
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll @@URL@@ zone=stocks:4m
                    interval=100ms timeout=1s max_size=2m
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/@@CRED@@;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices?zone=small
                    zone=small:256k interval=100ms timeout=1s max_size=2m
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
        location = /status/small { stockprice_status small; }
    }
}
EOF2

my $good_url = 'http://127.0.0.1:%%PORT_1%%/prices';

sub configure {
    my ($url, $cred) = @_;

    my $c = $conf =~ s/\@\@URL\@\@/$url/r;
    $c =~ s/\@\@CRED\@\@/$cred \/\/ 'credentials'/e;

    $t->write_config($c);
}

configure($good_url);
$t->run;

ok($t->wait_status('refreshes', 1), 'good data in');
ok($t->wait_status('refreshes', 1, 10, '/status/small'),
   'zone "small": good data in');

# the lines of error.log from here on

my $log_from = length $t->read_file('error.log');

sub new_log {
    my $log = $t->read_file('error.log');
    my $new = substr $log, $log_from;
    $log_from = length $log;
    return $new;
}

# one fault: wait for a failed refresh, take the data served then, wait
# for another failure and check that the data, the counters, lastError and
# the error log say what they should

sub check_fault {
    my ($name, $re, $before) = @_;

    ok($t->wait_status('failures', $before->{failures} + 1, 15),
       "$name: a refresh fails");

    my $mid = $t->status;
    my $good = $t->get('/api/StockPrice')->{content};

    ok($t->wait_status('failures', $mid->{failures} + 1, 15),
       "$name: and the next");

    is($t->get('/api/StockPrice')->{content}, $good,
       "$name: same records served (same ids)");

    my $st = $t->status;
    is($st->{symbols}, 3, "$name: three symbols kept");
    is($st->{refreshes}, $mid->{refreshes}, "$name: no refresh counted");
    ok($st->{consecutiveFailures} >= 2, "$name: consecutive failures counted");
    like($st->{lastError} // '', $re, "$name: lastError");

    my @lines = grep { /stockprice zone "stocks"/ } split /\n/, new_log();
    my @bad = grep {
        !/\[error\] .*stockprice zone "stocks": .*$re.*, keeping 3 symbols\b/
    } grep { /\[(error|crit|alert|emerg)\]/ } @lines;

    ok(@lines >= 2, "$name: error lines logged");
    is(join("\n", @bad), '', "$name: each line is the one clear line");

    return $st;
}

sub recover {
    my ($name, $st) = @_;

    ok($t->wait_status('refreshes', $st->{refreshes} + 1, 15),
       "$name: recovers on the next success");
    is($t->status->{consecutiveFailures}, 0, "$name: failure streak reset");
    new_log();
}

like($t->get('/api/StockPrice')->{content}, qr/"symbol":"MSFT"/,
     'records served');

# faults of the URL itself, brought in by a reload (same zone name and
# size: the data stays); the reload back restores the good URL

my @url_faults = (
    [ 'connection refused', 'http://127.0.0.1:%%PORT_2%%/prices',
      qr/refused|connect/i ],
    [ 'unresolvable host', 'http://stockprice-test.invalid/prices',
      qr/resolv/i ],
    [ 'connect timeout', "http://127.0.0.1:$bh_port/prices",
      qr/timed out|timeout/i ],
);

for my $f (@url_faults) {
    my ($name, $url, $re) = @$f;

    configure($url);
    ok($t->reload(1), "$name: reloaded");

    my $before = $t->status;

    my $st = check_fault($name, $re, $before);

    configure($good_url);
    ok($t->reload(1), "$name: reloaded back");

    recover($name, $st);
}

# faults of the answer

my $auth0 = $t->status->{authCalls};

my @answer_faults = (
    [ '404', { mode => 'status', status => 404 }, qr/upstream answered 404/ ],
    [ '401 twice', { mode => '401' }, qr/upstream answered 401/ ],
);

for my $f (@answer_faults) {
    my ($name, $ctl, $re) = @$f;

    my $before = $t->status;

    $up->control($ctl);
    my $st = check_fault($name, $re, $before);
    $up->control({});

    recover($name, $st);
}

ok($t->status->{authCalls} > $auth0 + 2,
   '401 twice: authCalls counted a re-auth per failed refresh');

# authentication fails: the upstream forgets the token, and the password
# the module now has is wrong

{
    configure($good_url, 'wrong');
    ok($t->reload(1), 'wrong password: reloaded');
    $up->control({ forget => 1 });

    my $before = $t->status;

    my $st = check_fault('wrong password', qr/auth answered 401/, $before);
    # one auth call per failed refresh (the first may have started
    # before $before was taken)
    my $na = $st->{authCalls} - $before->{authCalls};
    my $nf = $st->{failures} - $before->{failures};
    ok($na >= 1 && $na >= $nf - 1,
       "wrong password: auth calls counted ($na for $nf failures)");
    is($st->{authenticated}, JSON::PP::false,
       'wrong password: no token held');

    configure($good_url);
    ok($t->reload(1), 'wrong password: reloaded back');

    recover('wrong password', $st);
    is($t->status->{authenticated}, JSON::PP::true, 'authenticated again');
}

# the Prometheus counters move with a failure and a success

sub prom {
    my $text = $t->get('/status?format=prometheus')->{content};
    my %v = $text =~ /^(stockprice_\w+)\{zone="stocks"\} (\S+)$/mg;
    return \%v;
}

{
    my $p0 = prom();

    $up->control({ mode => 'status', status => 503 });
    ok($t->wait_for(sub {
        prom()->{stockprice_failures_total} > $p0->{stockprice_failures_total}
    }, 5), 'prometheus: failures_total grows with a 503');
    ok(prom()->{stockprice_consecutive_failures} >= 1,
       'prometheus: consecutive_failures set');

    my $p1 = prom();
    $up->control({});

    ok($t->wait_for(sub {
        prom()->{stockprice_refreshes_total}
            > $p1->{stockprice_refreshes_total}
    }, 15), 'prometheus: refreshes_total grows with the next success');
    is(prom()->{stockprice_consecutive_failures}, 0,
       'prometheus: consecutive_failures back to 0');
    new_log();
}

# 5,000 symbols: the 256k zone "small" cannot take them and keeps its
# three; the 4m zone "stocks" takes them all

{
    my $small = $t->status('/status/small');
    is($small->{symbols}, 3, 'zone "small" has three symbols');

    $up->control({ records => [ map { { symbol => sprintf('SYM%05d', $_),
                                        price => $_ + 0.25 } } 1 .. 5000 ] });

    ok($t->wait_for(sub {
        $t->status('/status/small')->{failures} >= $small->{failures} + 1
    }, 10), 'zone "small": 5,000 symbols fail');

    my $st = $t->status('/status/small');
    is($st->{symbols}, 3, 'zone "small" keeps its three symbols');
    like($st->{lastError} // '', qr/too small for 5003 symbols, \d+ bytes/,
         'zone "small": lastError says the size needed');

    my ($needed) = ($st->{lastError} // '') =~ /(\d+) bytes/;
    ok($needed && $needed > $st->{zoneBytesTotal},
       'zone "small": the size needed is more than the zone has');

    like(new_log(), qr/\[error\][ ].*stockprice[ ]zone[ ]"small":
                       [ ]zone[ ]is[ ]too[ ]small[ ]for[ ]5003[ ]symbols,
                       [ ]\d+[ ]bytes[ ]needed,[ ]keeping[ ]3[ ]symbols/x,
         'zone "small": an error line with the size needed');

    ok($t->wait_for(sub { $t->status->{symbols} == 5003 }, 10),
       'zone "stocks" took all 5,003 symbols');

    $up->control({});
}

# secrets: over the whole run, auth failures included

my $log = $t->read_file('error.log');
my @tokens = map { /^Bearer (.+)$/ ? $1 : () }
             map { $_->{headers}{authorization} // '' }
             @{ $up->stats->{requests} };

ok(@tokens > 0, 'tokens were issued and used');
unlike($log, qr/pa"ss:word/, 'password never in the error log');
unlike($log, qr/Wr0ng-pa55word/, 'wrong password never in the error log');
unlike($log, qr/tok-\d+/, 'no token in the error log');

for my $u ('/status', '/status?format=prometheus', '/status/small',
           '/api/StockPrice', '/api/StockPrice/MSFT', '/api/StockPrice/nope')
{
    my $body = $t->get($u)->{content} // '';
    ok($body !~ /pa"ss:word|Wr0ng-pa55word|tok-\d+/,
       "$u shows neither password nor token");
}

$t->done;

done_testing;
