#!/usr/bin/perl

# Failover (CONTRACT sections 2 and 8): backup=URL endpoints of the same
# shape are tried in order within the same refresh when the ones before
# fail (no answer, not 2xx, a body of no records); the primary is asked
# first again at the next refresh; status activeUpstream is the index of
# the URL that answered last (0 the primary, 1... the backups, null before
# any).  A Retry-After holds back only the upstream that sent it: the
# backups are asked at once, and the refreshes go on at the interval.
# Each upstream's answers have validators of their own: a backup answering
# refresh after refresh is asked conditionally and its 304s are
# successes.  With batch=, only the failing request goes to a backup.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;

# three upstreams, told apart by a record of their own: symbol WHO, price
# 100 the primary's, 101 backup 1's, 102 backup 2's

my $pri = FakeUpstream->start($t, name => 'pri', port => $t->port(1));
my $b1 = FakeUpstream->start($t, name => 'b1', port => $t->port(2));
my $b2 = FakeUpstream->start($t, name => 'b2', port => $t->port(3));

my %ok = (auth => 0, keepalive => 1);
my %who = (pri => 100, b1 => 101, b2 => 102);

sub normal {
    my ($up, %more) = @_;
    $up->control({ %ok, records => [ { symbol => 'WHO',
                                       price => $who{ $up->{name} } } ],
                   %more });
}

normal($_) for $pri, $b1, $b2;

my $config = <<'EOF2';
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:256k
                    interval=200ms timeout=1s
                    backup=http://127.0.0.1:%%PORT_2%%/prices
                    backup=http://127.0.0.1:%%PORT_3%%/prices
                    EXTRA;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF2

sub config {
    my ($extra) = @_;

    (my $c = $config) =~ s/EXTRA/$extra \/\/ ''/e;
    $t->write_config($c);
}

sub asked { $_[0]->stats->{prices} // 0 }

# whose records the zone serves: 100, 101, 102 (see %who)

sub who {
    my $list = $t->get_json('/api/StockPrice') // [];
    my ($w) = grep { $_->{symbol} eq 'WHO' } @$list;
    return $w ? $w->{price} : -1;
}

# the refreshes counted from now: waits for "n" more

sub more_refreshes {
    my ($n) = @_;
    my $from = $t->status->{refreshes} // 0;
    return $t->wait_status('refreshes', $from + $n, 10);
}

config();

###############################################################################

# before any answer: null

{
    # a feed no one answers yet: the upstreams are there, nginx is not
    # asked before it runs; the status of a zone without a refresh
    $pri->control({ %ok, mode => 'status', status => 500 });
    $b1->control({ %ok, mode => 'status', status => 500 });
    $b2->control({ %ok, mode => 'status', status => 500 });
}

$t->run;

ok($t->wait_status('failures', 1), 'every upstream failing: a failure');

my $st = $t->status;
ok(exists $st->{activeUpstream} && !defined $st->{activeUpstream},
   'activeUpstream null before any answer');
like($st->{lastError} // '', qr/^upstream answered 500/,
     'lastError: the primary\'s failure first');
ok(asked($b1) >= 1 && asked($b2) >= 1,
   'the backups were asked in the same refreshes');

# the primary answers: 0, and the backups are left alone

normal($_) for $pri, $b1, $b2;

ok($t->wait_for(sub { ($t->status->{activeUpstream} // -1) == 0 }, 10),
   'primary answering: activeUpstream 0');
is(who(), 100, 'the primary\'s records');

my ($n1, $n2) = (asked($b1), asked($b2));
ok(more_refreshes(5), '5 more refreshes');
is(asked($b1), $n1, 'backup 1 not asked while the primary answers');
is(asked($b2), $n2, 'backup 2 not asked while the primary answers');

###############################################################################

# the primary fails: backup 1 in the same refresh, no failure counted

$st = $t->status;
my $failures = $st->{failures};
my $partial = $st->{partialRefreshes};

$pri->control({ %ok, mode => 'status', status => 503 });

ok($t->wait_for(sub { ($t->status->{activeUpstream} // -1) == 1 }, 10),
   'primary 503: activeUpstream 1');
ok($t->wait_for(sub { who() == 101 }, 5),
   'backup 1\'s records served');

my $p0 = asked($pri);
$n1 = asked($b1);
ok(more_refreshes(5), '5 more refreshes on backup 1');

$st = $t->status;
is($st->{failures}, $failures, 'no failed refresh');
is($st->{partialRefreshes}, $partial, 'nor a partial one');
is($st->{consecutiveFailures}, 0, 'consecutiveFailures 0');
ok(asked($pri) >= $p0 + 5, 'the primary asked first at every refresh');
ok(asked($b1) >= $n1 + 5, 'backup 1 asked at every refresh');
is(asked($b2), $n2, 'backup 2 not asked');
like($t->read_file('error.log'),
     qr/stockprice zone "stocks": 1 of 1 requests asked a backup \(upstream answered 503\), all applied/,
     'one warn line per refresh says so');

# the primary back: at the next refresh

normal($pri);

ok($t->wait_for(sub { ($t->status->{activeUpstream} // -1) == 0 }, 10),
   'primary back: activeUpstream 0 again');
ok($t->wait_for(sub { who() == 100 }, 5), 'the primary\'s records again')
    or diag who();

###############################################################################

# no answer from the primary, a 500 from backup 1: backup 2

$pri->control({ %ok, mode => 'close' });
$b1->control({ %ok, mode => 'status', status => 500 });

ok($t->wait_for(sub { ($t->status->{activeUpstream} // -1) == 2 }, 10),
   'primary silent, backup 1 500: activeUpstream 2');
ok($t->wait_for(sub { who() == 102 }, 5),
   'backup 2\'s records served');
is($t->status->{failures}, $failures, 'still no failed refresh');

# all three failing: a failed refresh, the data kept, 2 still the last

$b2->control({ %ok, mode => 'status', status => 502 });

ok($t->wait_status('failures', $failures + 1), 'all failing: a failure');
$st = $t->status;
is($st->{activeUpstream}, 2, 'activeUpstream: the last that answered');
like($st->{lastError}, qr/^upstream request failed|^upstream answered/,
     'lastError: the first failure, the primary\'s');
is(who(), 102, 'the last records kept');

###############################################################################

# a body of no records from the primary is a failure too: backup 1

normal($_) for $b1, $b2;
$pri->control({ %ok, mode => 'body', body => 'not json' });

ok($t->wait_for(sub { ($t->status->{activeUpstream} // -1) == 1 }, 10),
   'primary not JSON: backup 1');
ok($t->wait_for(sub { who() == 101 }, 5),
   'backup 1\'s records, none of the bad body');
like($t->read_file('error.log'),
     qr/requests asked a backup \(upstream response is not a JSON array or object|requests asked a backup \(upstream response is not valid JSON/,
     'the warn line names the bad body');

###############################################################################

# Retry-After from the primary: only it waits; backup 1 at once, the
# refreshes go on at the interval

$pri->control({ %ok, mode => 'status', status => 429,
                headers => { 'Retry-After' => 30 } });

ok($t->wait_for(sub { defined $t->status->{rateLimitedUntil} }, 10),
   'rateLimitedUntil set');
$p0 = asked($pri);
$n1 = asked($b1);
my $t0 = time;
ok(more_refreshes(5), '5 more refreshes, the primary held back');
ok(time - $t0 < 5, 'at the interval, not after Retry-After')
    or diag time - $t0;
is(asked($pri), $p0, 'the primary not asked before its Retry-After');
ok(asked($b1) >= $n1 + 5, 'backup 1 asked at every refresh');
is($t->status->{activeUpstream}, 1, 'activeUpstream 1');
$st = $t->status;
is($st->{failures}, $failures + 1, 'no failure for it');

###############################################################################

# backup 1 answering refresh after refresh, with an ETag of its own: asked
# conditionally, its 304s are successes

normal($b1, etag => '"b1-v1"');

ok($t->wait_for(sub { ($b1->stats->{not_modified} // 0) >= 3 }, 10),
   'backup 1 answers 304s to conditional requests');

my @reqs = grep { ($_->{path} // '') eq '/prices' }
           @{ $b1->stats->{requests} // [] };
is($reqs[-1]{headers}{'if-none-match'}, '"b1-v1"',
   'asked with backup 1\'s own ETag');
is($t->status->{failures}, $failures + 1, '304s of a backup: no failure');
is($t->status->{activeUpstream}, 1, 'activeUpstream 1 on 304s');
is(who(), 101, 'records unchanged by the 304s');

$t->done;

###############################################################################

# batch=1: only the request that fails goes to a backup

$t = StockTest->new;
$pri = FakeUpstream->start($t, name => 'pri', port => $t->port(1));
$b1 = FakeUpstream->start($t, name => 'b1', port => $t->port(2));
$b2 = FakeUpstream->start($t, name => 'b2', port => $t->port(3));
normal($_) for $pri, $b1, $b2;
config('symbols=MSFT,AAPL,SAP batch=1');
$t->run;

ok($t->wait_status('refreshes', 2), 'batch=1: refreshes');
$pri->control({ %ok, fail_symbols => { SAP => 500 } });

ok($t->wait_for(sub { ($t->status->{activeUpstream} // -1) >= 0
                      && ($b1->stats->{prices} // 0) >= 3 }, 10),
   'backup 1 asked');

my @asked = map { join ',', @{ $_->{asked} // [] } }
            grep { ($_->{path} // '') eq '/prices' }
            @{ $b1->stats->{requests} // [] };
is_deeply([ sort { $a cmp $b } keys %{ { map { $_ => 1 } @asked } } ], ['SAP'],
          'backup 1 asked for SAP alone');
$st = $t->status;
is($st->{failures}, 0, 'no failure');
is($st->{partialRefreshes}, 0, 'no partial refresh');
is(asked($b2), 0, 'backup 2 never asked');

$t->done;

###############################################################################

# with auth=: a backup is sent the token too (an endpoint of the same
# provider); the primary's auth is not asked again for a failover

$t = StockTest->new;
$pri = FakeUpstream->start($t, name => 'pri', port => $t->port(1));
$b1 = FakeUpstream->start($t, name => 'b1', port => $t->port(2));
$b2 = FakeUpstream->start($t, name => 'b2', port => $t->port(3));
$t->write_file('credentials', $pri->credentials);
$pri->control({ auth => 1, keepalive => 1 });
normal($b1);
normal($b2);
config('auth=http://127.0.0.1:%%PORT_1%%/auth '
       . 'credentials=%%TESTDIR%%/credentials');
$t->run;

ok($t->wait_status('refreshes', 2), 'auth: refreshes');
my $auth0 = $pri->stats->{auth};
$pri->control({ auth => 1, keepalive => 1, mode => 'status', status => 500 });

ok($t->wait_for(sub { ($t->status->{activeUpstream} // -1) == 1 }, 10),
   'auth: backup 1 answers');
@reqs = grep { ($_->{path} // '') eq '/prices' }
        @{ $b1->stats->{requests} // [] };
like($reqs[-1]{headers}{authorization} // '', qr/^Bearer tok-pri-/,
     'the backup is sent the token the primary\'s auth gave');
is($pri->stats->{auth}, $auth0, 'no auth call for the failover');

$t->done;

###############################################################################

# configuration errors: the parameter, file:line

$t = StockTest->new;
my $u = 'http://127.0.0.1:1/p';

$t->config_fails('backup=ftp://',
                 "stockprice_poll $u zone=z:64k backup=ftp://h/p;",
                 qr/invalid backup URL "backup=ftp:\/\/h\/p": must be http:\/\/ or https:\/\//);
$t->config_fails('8 backups',
                 "stockprice_poll $u zone=z:64k "
                 . join(' ', map { "backup=$u$_" } 1 .. 8) . ';',
                 qr/too many "backup=" in "backup=\Q$u\E8": at most 7/);
$t->config_fails('$symbol in the URL, not in a backup',
                 "stockprice_poll $u?s=\$symbol zone=z:64k symbols=A,B "
                 . "backup=$u;",
                 qr/backup URL "\Q$u\E" must use "\$symbol" as the prices URL does/);
$t->config_fails('$symbol in a backup, not in the URL',
                 "stockprice_poll $u zone=z:64k symbols=A,B "
                 . "backup=$u?s=\$symbol;",
                 qr/backup URL "\Q$u\E\?s=\$symbol" must not use "\$symbol" as the prices URL does/);

$t->done;

done_testing();
