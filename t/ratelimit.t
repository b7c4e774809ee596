#!/usr/bin/perl

# 429 and 503 with Retry-After (CONTRACT sections 3.2 and 5): no request
# to the upstream before the time it names, in seconds or as an HTTP date,
# capped at an hour; the wait shows as status rateLimitedUntil and in the
# error line; a Retry-After on another status changes nothing.

use strict;
use warnings;

use Test::More;
use POSIX qw(strftime);
use Time::HiRes qw(time);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$up->control({ auth => 0 });

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:64k
                    interval=100ms timeout=2s;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location = /status { stockprice_status stocks; }
    }
}
EOF2

$t->run;

ok($t->wait_status('refreshes', 1), 'first refresh');
is($t->status->{rateLimitedUntil}, undef, 'not rate-limited: null');

sub iso_ms {
    my ($iso) = @_;
    return undef unless defined $iso
        && $iso =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+(?:\.\d+)?)Z$/;
    require Time::Local;
    return (Time::Local::timegm(int $6, $5, $4, $3, $2 - 1, $1)
            + ($6 - int $6)) * 1000;
}

# the upstream says: not before N seconds from now; each case ends with
# the upstream well again and a refresh that succeeds

sub limited {
    my ($name, $status, $retry, $wait) = @_;

    my $st0 = $t->status;
    my $n0 = $up->stats->{prices};

    $up->control({ auth => 0, mode => 'status', status => $status,
                   headers => { 'Retry-After' => $retry } });

    ok($t->wait_status('failures', $st0->{failures} + 1), "$name: refused");

    my $refused = time;
    my $n1 = $up->stats->{prices};

    $up->control({ auth => 0 });

    # counted from here: a refresh in flight at the switch to $status may
    # have ended well after $st0 was read

    my $st = $t->status;
    my $until = iso_ms($st->{rateLimitedUntil});

    ok(defined $until && $until > $refused * 1000 + ($wait - 1.5) * 1000
       && $until < $refused * 1000 + ($wait + 1) * 1000,
       "$name: rateLimitedUntil about $wait s ahead ("
       . ($st->{rateLimitedUntil} // 'null') . ')');
    like($st->{lastError} // '',
         qr/upstream answered $status, retry after \d+ s/,
         "$name: lastError says how long");

    # nothing for most of the wait (100 ms interval: some 10 a second)

    ok(!$t->wait_for(sub { $up->stats->{prices} > $n1 }, $wait - 1, 1),
       "$name: no request for " . ($wait - 1) . ' s');

    ok($t->wait_status('refreshes', $st->{refreshes} + 1, $wait + 5),
       "$name: then the refreshes go on");
    ok(time - $refused >= $wait - 1, "$name: not before the time named");
    is($t->status->{rateLimitedUntil}, undef, "$name: null again");

    return $n1 - $n0;
}

limited('429, seconds', 429, 3, 3);
limited('503, seconds', 503, 2, 2);

# an HTTP date 3 seconds ahead

my $date = strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime(time + 4));
limited('429, an HTTP date', 429, $date, 3);

# a Retry-After on a 500 is not a rate limit: the usual back-off

my $st0 = $t->status;

$up->control({ auth => 0, mode => 'status', status => 500,
               headers => { 'Retry-After' => 30 } });

ok($t->wait_status('failures', $st0->{failures} + 2), '500: refused twice');
is($t->status->{rateLimitedUntil}, undef, '500: not a rate limit');

$up->control({ auth => 0 });

ok($t->wait_status('refreshes', $st0->{refreshes} + 1),
   '500: the next refresh succeeds');

# more than an hour: an hour

$up->control({ auth => 0, mode => 'status', status => 429,
               headers => { 'Retry-After' => 100000 } });

$st0 = $t->status;

ok($t->wait_status('failures', $st0->{failures} + 1), 'a day asked: refused');

my $until = iso_ms($t->status->{rateLimitedUntil});

ok(defined $until && $until <= (time + 3600) * 1000 + 1000
   && $until >= (time + 3590) * 1000, 'a day asked: an hour at most');

like($t->read_file('error.log'),
     qr/\[error\] .*zone "stocks": upstream answered 429, retry after 3600 s, keeping 3 symbols/,
     'the error line says how long');

$t->done;

done_testing;
