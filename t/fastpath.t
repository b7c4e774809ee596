#!/usr/bin/perl

# The fast paths answer exactly what the general path answers.  The whole
# list is sent from a per-worker copy made once per refresh (a long list by
# sendfile() from a memfd); ?symbols= and /SYM copy records out of the zone
# per request.  After every refresh and every reload, with sendfile on and
# off: the list equals, byte for byte, the ?symbols= answer for every
# symbol, and each of its records is the newest of that symbol's history.
# A slow client keeps the copy it started with across refreshes.

use strict;
use warnings;

use IO::Socket::INET;
use Socket;
use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

# 300 symbols: a list of some 60k, over the 32k that goes by sendfile()

my @syms = map { sprintf 'FP%03d', $_ } 1 .. 300;

$up->control({ symbols => \@syms, auth => 0 });

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;
    sendfile on;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:4m
                    interval=300ms history=3;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices?zone=small
                    zone=small:1m interval=300ms symbols=FP001,FP002,FP003;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location /nosendfile/api/StockPrice {
            sendfile off;
            stockprice stocks;
        }
        location /small/api/StockPrice { stockprice small; }
        location = /status { stockprice_status stocks; }
    }

    # a small send buffer: a long answer waits in nginx, not in the kernel
    server {
        listen 127.0.0.1:%%PORT_2%% sndbuf=4k;

        location /api/StockPrice { stockprice stocks; }
        location /nosendfile/api/StockPrice {
            sendfile off;
            stockprice stocks;
        }
    }
}
EOF2

$t->run;

ok($t->wait_status('refreshes', 1), 'first refresh');

my $all = join ',', @syms;

# one consistent look at the zone: the three answers of the same
# generation (same ETag), retried if a refresh came in between

sub look {
    my ($prefix) = @_;

    for (1 .. 10) {
        my $l = $t->get("$prefix/api/StockPrice");
        my $f = $t->get("$prefix/api/StockPrice?symbols=$all");
        my $l2 = $t->get("$prefix/api/StockPrice");

        next unless $l->{status} == 200 && $f->{status} == 200
                    && $l->{headers}{etag} eq $f->{headers}{etag}
                    && $l2->{headers}{etag} eq $l->{headers}{etag};

        return ($l, $f, $l2);
    }

    return;
}

sub records {
    my ($body) = @_;

    # records hold no nested objects
    return () unless $body =~ /^\[\{(.*)\}\]$/s;
    return map { "{$_}" } split /\},\{/, $1;
}

my %etags;

for my $round (1 .. 8) {
    my $name = $round <= 6 ? "refresh $round" : "after reload " . ($round - 6);

    if ($round > 6) {
        ok($t->reload(1), "$name: reloaded");
    } else {
        my $n = $t->status->{refreshes};
        ok($t->wait_status('refreshes', $n + 1), "$name: refreshed");
    }

    for my $prefix ('', '/nosendfile') {
        my $what = $prefix ? "$name, sendfile off" : "$name, sendfile on";
        my ($l, $f, $l2) = look($prefix);

        ok($l, "$what: list and ?symbols= of one generation") or next;

        $etags{ $l->{headers}{etag} } = 1;

        ok(length $l->{content} > 32768, "$what: the list is over 32k");
        is($l->{content}, $f->{content},
           "$what: list equals ?symbols= of every symbol, byte for byte");
        is($l2->{content}, $l->{content}, "$what: the list again, the same");
        is($l->{headers}{'content-length'}, length $l->{content},
           "$what: Content-Length");
        is($l->{headers}{'last-modified'}, $f->{headers}{'last-modified'},
           "$what: Last-Modified as ?symbols= has it");

        # the list's Last-Modified, formatted once per generation, still
        # answers If-Modified-Since (unless a refresh came in between)

        my $ims = $t->get("$prefix/api/StockPrice", 'If-Modified-Since'
                          => $l->{headers}{'last-modified'});
        ok($ims->{status} == 304
           || ($ims->{status} == 200
               && $ims->{headers}{etag} ne $l->{headers}{etag}),
           "$what: If-Modified-Since of that Last-Modified: 304");

        my @recs = records($l->{content});
        is(scalar @recs, 300, "$what: 300 records");

        # each record is the newest of its symbol's history (by bytes)

        my $bad = 0;
        for my $i (0, 1, 150, 299) {
            my ($sym) = $recs[$i] =~ /"symbol":"([^"]+)"/;
            my $h = $t->get("$prefix/api/StockPrice/$sym");
            my @hist = records($h->{content});
            $bad++ unless @hist && $hist[0] eq $recs[$i]
                          || $h->{headers}{etag} ne $l->{headers}{etag};
        }
        is($bad, 0, "$what: list records are the newest of each history");
    }
}

ok(keys %etags >= 6, 'a new ETag after each refresh (' . keys(%etags) . ')');

# HEAD and 304 from the fast path; the small list (no sendfile) too

for my $prefix ('', '/small') {
    my $r = $t->get("$prefix/api/StockPrice");
    my $h = $t->http('HEAD', "$prefix/api/StockPrice");

    is($h->{status}, 200, "$prefix list: HEAD 200");
    is($h->{content} // '', '', "$prefix list: HEAD has no body");
    is($h->{headers}{'content-length'}, length $r->{content},
       "$prefix list: HEAD has the Content-Length of GET")
        if $h->{headers}{etag} eq $r->{headers}{etag};

    my $nm = $t->get("$prefix/api/StockPrice",
                     'If-None-Match' => $r->{headers}{etag});
    ok($nm->{status} == 304
       || $nm->{headers}{etag} ne $r->{headers}{etag},
       "$prefix list: If-None-Match with the current ETag: 304");
    is($nm->{content} // '', '', "$prefix list: 304 has no body")
        if $nm->{status} == 304;
}

# a slow client: it starts on one generation and reads it to the end,
# byte for byte, while refreshes replace the workers' copies

for my $prefix ('', '/nosendfile') {
    my $what = $prefix ? 'sendfile off' : 'sendfile on';
    my $url = 'http://127.0.0.1:' . $t->port(2) . "$prefix/api/StockPrice";

    my ($s, $buf, $ref);

    for (1 .. 5) {
        $ref = $t->get($url);

        # a small receive buffer (set before connect, for the window), so
        # that most of the body waits in nginx

        $s = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
        setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
        $s->connect(Socket::pack_sockaddr_in($t->port(2),
                                             Socket::inet_aton('127.0.0.1')))
            or die "connect: $!";

        print $s "GET $prefix/api/StockPrice HTTP/1.0\r\nHost: x\r\n\r\n";

        $buf = '';
        sysread($s, $buf, 1024);

        last if $buf =~ /ETag: \Q$ref->{headers}{etag}\E/i;

        close $s;
        undef $s;
    }

    ok($s, "$what: a slow client on the generation of a known answer")
        or next;

    my $n = $t->status->{refreshes};
    ok($t->wait_status('refreshes', $n + 2), "$what: two refreshes while "
       . 'a client reads slowly');

    # requests of the new generation renew the copies in both workers
    $t->get($url) for 1 .. 10;

    my $end = time + 10;
    while (time < $end) {
        my $got = sysread($s, my $chunk, 65536);
        last unless $got;
        $buf .= $chunk;
    }

    close $s;

    my ($head, $body) = split /\r\n\r\n/, $buf, 2;

    ok(length $ref->{content} > 32768, "$what: a long list");
    is($body, $ref->{content},
       "$what: the slow client got its generation whole, byte for byte");
    isnt($t->get($url)->{headers}{etag}, $ref->{headers}{etag},
         "$what: while a newer one is current");
}

$t->done;

done_testing;
