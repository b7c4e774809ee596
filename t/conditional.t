#!/usr/bin/perl

# Conditional requests upstream (CONTRACT section 8): the module sends
# If-None-Match with the ETag of the answer whose records the zone holds
# (If-Modified-Since with its Last-Modified when it had no ETag); a 304 is
# a successful refresh that changes nothing: no new records, the same
# ETag and bytes, refreshes and lastSuccess move.  The validators live in
# the zone: both workers ask with them, a reload keeps them unless it
# changed the request, a failed answer does not replace them, an answer
# without validators clears them; with batch= each request has its own.
# The module as its own upstream (an edge polling an origin) gets 304s
# from an unchanged origin.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

my %base = (auth => 0, keepalive => 1);

$up->control({ %base, etag => '"v1"' });

my $config = <<'EOF2';
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:256k
                    interval=INTERVAL timeout=1s history=3
                    symbols=MSFT,AAPL,SAP
                    EXTRA;

    stockprice_poll http://127.0.0.1:%%PORT_0%%/api/StockPrice
                    zone=edge:256k interval=100ms history=3;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }

        location /edge/api/StockPrice { stockprice edge; }
        location = /edge/status { stockprice_status edge; }
    }
}
EOF2

sub config {
    my (%o) = @_;

    (my $c = $config) =~ s/INTERVAL/$o{interval} \/\/ '150ms'/e;
    $c =~ s/EXTRA/$o{extra} \/\/ ''/e;
    $t->write_config($c);
}

config();
$t->run;

# the prices requests the upstream saw since the count "since"

sub asked_since {
    my ($since) = @_;

    my $s = $up->stats;
    my @prices = grep { ($_->{path} // '') eq '/prices' }
                 @{ $s->{requests} // [] };
    my $new = ($s->{prices} // 0) - $since;

    return $new > 0 ? @prices[-($new > @prices ? @prices : $new) .. -1] : ();
}

sub prices_count { $up->stats->{prices} // 0 }

# waits for "n" more prices requests than "since"

sub wait_asked {
    my ($since, $n) = @_;
    return $t->wait_for(sub { prices_count() >= $since + $n }, 10);
}

sub inm { $_[0]{headers}{'if-none-match'} }
sub ims { $_[0]{headers}{'if-modified-since'} }

###############################################################################

# an unchanged upstream: every request after the first asks with its ETag

ok($t->wait_status('refreshes', 1), 'first refresh');

my @first = asked_since(0);
ok(@first >= 1 && !defined inm($first[0]) && !defined ims($first[0]),
   'the first request is unconditional');

my $list = $t->get('/api/StockPrice');
my $st0 = $t->status;
my $n0 = prices_count();

ok(wait_asked($n0, 10), '10 more refreshes');

my @asked = asked_since($n0);
is(scalar(grep { (inm($_) // '') eq '"v1"' } @asked), scalar @asked,
   'each sends If-None-Match: "v1" (' . @asked . ' requests)');
ok(!grep({ defined ims($_) } @asked),
   'and no If-Modified-Since beside an ETag');

my %conns = map { $_->{conn} => 1 } @asked;
diag('connections (a worker each, kept alive): ' . join ' ', sort keys %conns);

ok(($up->stats->{not_modified} // 0) >= 10, 'the upstream answered 304s');

my $st = $t->status;
ok($st->{refreshes} >= $st0->{refreshes} + 9,
   "304s are successful refreshes ($st0->{refreshes} -> $st->{refreshes})");
is($st->{failures}, 0, 'no failure');
isnt($st->{lastSuccess}, $st0->{lastSuccess}, 'lastSuccess moves');
is($st->{records}, 3, 'no new records: history does not grow');
ok(($st->{upstreamResponses}{'3xx'} // 0) >= 10, 'counted as 3xx answers');

my $again = $t->get('/api/StockPrice');
is($again->{headers}{etag}, $list->{headers}{etag}, 'the same ETag');
is($again->{content}, $list->{content}, 'the same bytes');

# the validators are the zone's, not a worker's: the workers killed, the
# new ones ask with them at once

my %before = map { $_->{conn} => 1 } asked_since(0);
my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers');

$n0 = prices_count();
kill 'KILL', @workers;

ok($t->wait_for(sub {
    grep { !$before{ $_->{conn} } } asked_since($n0) }, 10),
   'new workers poll after a kill of both');
my ($next) = grep { !$before{ $_->{conn} } } asked_since($n0);
is($next && inm($next), '"v1"', 'and ask with If-None-Match: "v1"');
is($next && $next->{status}, 304, 'answered 304');
$t->allow_log(qr/exited on signal 9/);

###############################################################################

# a change upstream: a 200 with new prices, asked for with its ETag next

$up->control({ %base, etag => '"v2"' });
$n0 = prices_count();

ok($t->wait_for(sub {
    ($t->get('/api/StockPrice')->{headers}{etag} // '')
        ne $list->{headers}{etag} }, 5),
   'a changed upstream: a new ETag served');
isnt($t->get('/api/StockPrice')->{content}, $list->{content},
     'and new prices');
is($t->status->{records}, 6, 'history grows by the new records');

wait_asked(prices_count(), 3);
@asked = asked_since($n0);
is(inm($asked[0]), '"v1"', 'the change was asked for with "v1"');
is(inm($asked[-1]), '"v2"', 'then with "v2"');

###############################################################################

# a 200 the module cannot use keeps the validators of the records it has

$up->control({ %base, etag => '"bad"', mode => 'body',
               body => 'not json at all' });

$st0 = $t->status;
ok($t->wait_status('failures', $st0->{failures} + 2), 'a body not JSON');

$n0 = prices_count();
$up->control({ %base, etag => '"v2"' });
ok(wait_asked($n0, 2), 'upstream well again');
@asked = asked_since($n0);
is(inm($asked[0]), '"v2"', 'asked with "v2" still, not the failed "bad"');
is($asked[0]{status}, 304, 'and 304: nothing lost');

# a 304 to a request that had no validator is an error, not "unchanged"

###############################################################################

# reload: the validators are the zone's; an interval changed keeps them,
# a request changed (a header added) drops them

$n0 = prices_count();
config(interval => '120ms');
$t->reload;
ok(wait_asked($n0 + 3, 3), 'refreshes after a reload');
@asked = asked_since($n0);
is(scalar(grep { (inm($_) // '') eq '"v2"' } @asked), scalar @asked,
   'a reload that changed interval=: still If-None-Match "v2"');

$n0 = prices_count();
config(extra => '"header=X-Tier: edge"');
$t->reload;
ok($t->wait_for(sub {
    grep { ($_->{headers}{'x-tier'} // '') eq 'edge' } asked_since($n0) },
    10), 'the reload with header= is in effect');
@asked = grep { ($_->{headers}{'x-tier'} // '') eq 'edge' } asked_since($n0);
ok(!defined inm($asked[0]), 'its first request is unconditional');
wait_asked(prices_count(), 2);
@asked = grep { ($_->{headers}{'x-tier'} // '') eq 'edge' } asked_since($n0);
is(inm($asked[-1]), '"v2"', 'then conditional again');

###############################################################################

# Last-Modified without an ETag: If-Modified-Since, exactly as sent

my $date = 'Wed, 02 Dec 2026 10:00:00 GMT';

$up->control({ %base, last_modified => $date });
$n0 = prices_count();
ok(wait_asked($n0, 4), 'an upstream with Last-Modified only');
@asked = asked_since($n0);
is($asked[-1]{headers}{'if-modified-since'}, $date,
   'If-Modified-Since: its Last-Modified');
ok(!defined inm($asked[-1]), 'no If-None-Match');
is($asked[-1]{status}, 304, 'answered 304');

# an answer without validators clears them: unconditional from then on

$up->control({ %base });
$n0 = prices_count();
ok(wait_asked($n0, 4), 'an upstream without validators');
@asked = asked_since($n0);
ok(!defined inm($asked[-1]) && !defined ims($asked[-1]),
   'unconditional requests');

# a 304 to an unconditional request is a failure: nothing to keep unchanged

$st0 = $t->status;
$up->control({ %base, mode => 'status', status => 304 });
ok($t->wait_status('failures', $st0->{failures} + 1),
   'a 304 nobody asked for fails the refresh');
like($t->status->{lastError}, qr/answered 304/, 'lastError says so');
$up->control({ %base });

###############################################################################

# the module as its own upstream: an edge polling an unchanged origin gets
# 304s, its list and ETag stay

$up->control({ %base, etag => '"v9"' });
$n0 = prices_count();
ok($t->wait_for(sub { my @a = asked_since($n0);
                      @a >= 2 && $a[-1]{status} == 304 }, 10),
   'the origin has "v9" and gets 304s');
my $edge_n = $t->status('/edge/status')->{refreshes};
ok($t->wait_for(sub {
    $t->status('/edge/status')->{refreshes} >= $edge_n + 2 }, 10),
   'the edge refreshes from it');

my $origin = $t->get('/api/StockPrice');
my $edge0 = $t->status('/edge/status');
my $edge_list = $t->get('/edge/api/StockPrice');

ok($t->wait_for(sub {
    $t->status('/edge/status')->{refreshes} >= $edge0->{refreshes} + 5 }, 10),
   '5 more edge refreshes');

my $edge = $t->status('/edge/status');
is($t->get('/api/StockPrice')->{headers}{etag}, $origin->{headers}{etag},
   'the origin is unchanged');
ok($edge->{upstreamResponses}{'3xx'} >= $edge0->{upstreamResponses}{'3xx'} + 5,
   'the edge got 304s from it ('
   . ($edge->{upstreamResponses}{'3xx'} - $edge0->{upstreamResponses}{'3xx'})
   . ')');
is($edge->{failures}, $edge0->{failures}, 'no edge failure');
is($t->get('/edge/api/StockPrice')->{headers}{etag},
   $edge_list->{headers}{etag}, "the edge's ETag stays");
is($edge->{records}, $edge0->{records}, "the edge's records stay");

# the origin changes: the edge follows with a 200

$up->control({ %base, etag => '"v10"' });
ok($t->wait_for(sub {
    ($t->get('/edge/api/StockPrice')->{headers}{etag} // '')
        ne $edge_list->{headers}{etag} }, 5),
   'a change at the origin reaches the edge');

$t->done;

###############################################################################

# batch=1: three requests a refresh, each with the validators of its own
# answer; one failing keeps its own while the others move on

my $b = StockTest->new;
my $bup = FakeUpstream->start($b);

$bup->control({ %base, etag => '"w1"' });

$b->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=batch:256k
                    interval=100ms symbols=MSFT,AAPL,SAP batch=1;

    server {
        listen 127.0.0.1:%%PORT_0%%;
        location = /status { stockprice_status batch; }
    }
}
EOF2

$b->run;

# the If-None-Match of the last request for each symbol since "since"

sub by_symbol {
    my ($since) = @_;

    my $s = $bup->stats;
    my @p = grep { ($_->{path} // '') eq '/prices' } @{ $s->{requests} };
    my $new = $s->{prices} - $since;
    my %last;

    for my $r (@p[-($new > @p ? @p : $new) .. -1]) {
        $last{ $r->{asked}[0] } = $r if $r->{asked};
    }

    return \%last;
}

ok($b->wait_status('refreshes', 3), 'batch=1: refreshes');

my $bn = $bup->stats->{prices};
ok($b->wait_for(sub { $bup->stats->{prices} >= $bn + 6 }, 10),
   'batch=1: more requests');
my $last = by_symbol($bn);
is(join(' ', map { inm($last->{$_} // {}) // 'none' } qw(AAPL MSFT SAP)),
   '"w1" "w1" "w1"', 'batch=1: each request asks with "w1"');

$bup->control({ %base, etag => '"w2"', fail_symbols => { SAP => 500 } });
$bn = $bup->stats->{prices};
ok($b->wait_for(sub { $bup->stats->{prices} >= $bn + 9 }, 10),
   'batch=1: SAP failing');
$last = by_symbol($bn);
is(join(' ', map { inm($last->{$_} // {}) // 'none' } qw(AAPL MSFT SAP)),
   '"w2" "w2" "w1"',
   'the applied ones ask with "w2", the failing SAP with "w1" still');
ok($b->status->{partialRefreshes} >= 1, 'partial refreshes');

$bup->control({ %base, etag => '"w2"' });
$bn = $bup->stats->{prices};
ok($b->wait_for(sub { $bup->stats->{prices} >= $bn + 9 }, 10),
   'batch=1: SAP well again');
$last = by_symbol($bn);
is(join(' ', map { inm($last->{$_} // {}) // 'none' } qw(AAPL MSFT SAP)),
   '"w2" "w2" "w2"', 'SAP got its 200 and asks with "w2" too');

$b->done;
done_testing;
