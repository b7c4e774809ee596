#!/usr/bin/perl

# Host names (CONTRACT section 3.2): libcurl resolves them in a thread of
# its own, so that a DNS server taking 3 s to answer never holds the
# worker: clients are answered at once meanwhile, and the refresh then
# succeeds; the answer is kept for the next refreshes (one query per name,
# not one per refresh).  nginx runs in a mount namespace of its own whose
# /etc/resolv.conf names the test's DNS server on 127.0.0.153 (a slow one
# written here); the machine's own resolv.conf is left alone.

use strict;
use warnings;

use Test::More;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Time::HiRes qw(time sleep);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $d = $t->dir;

plan skip_all => 'needs root and unshare(1) for a mount namespace'
    unless $> == 0 && -x '/usr/bin/unshare'
           && system('unshare -m true 2>/dev/null') == 0;

# the DNS server's delay, counted from the query's arrival

my $delay = 3;

my $up = FakeUpstream->start($t);
$up->control({ auth => 0 });

# the DNS server: every A query for *.stockprice.test answered with
# 127.0.0.1 after 3 s (other types: no record), each query counted in a
# file; answers go out by a select loop, so that queries wait side by side

my $dns = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.153',
                                LocalPort => 53)
    or plan skip_all => "no UDP socket on 127.0.0.153:53: $!";

my $dns_pid = fork // die "fork: $!";

if ($dns_pid == 0) {
    my (@due, $n);
    my $sel = IO::Select->new($dns);
    my $end = time + $t->limit(60);

    while (time < $end) {
        my $wait = @due ? $due[0][0] - time : 1;
        $wait = 0 if $wait < 0;

        if ($sel->can_read($wait)) {
            my $peer = $dns->recv(my $q, 512);
            next unless defined $peer && length $q > 12;

            $n++;
            open my $fh, '>', "$d/dns.count";
            print $fh "$n\n";
            close $fh;

            push @due, [ time + $delay, $peer, answer($q) ];
        }

        while (@due && $due[0][0] <= time) {
            my $a = shift @due;
            $dns->send($a->[2], 0, $a->[1]);
        }
    }

    POSIX::_exit(0);
}

close $dns;

# a reply to query $q: its question, and for an A question one answer

sub answer {
    my ($q) = @_;

    my $id = substr $q, 0, 2;
    my $i = 12;
    $i += 1 + ord substr $q, $i, 1 while ord substr $q, $i, 1;
    my $question = substr $q, 12, $i + 5 - 12;
    my $type = unpack 'n', substr $q, $i + 1, 2;

    my $a = $type == 1;

    return $id . pack('nnnnn', 0x8180, 1, $a ? 1 : 0, 0, 0) . $question
           . ($a ? pack('nnnNnC4', 0xc00c, 1, 1, 60, 4, 127, 0, 0, 1) : '');
}

# nginx in a mount namespace with the test's resolv.conf

$t->write_file('resolv.conf',
               "nameserver 127.0.0.153\noptions timeout:10 attempts:1\n");
$t->write_file('nginx-ns', <<"EOF");
#!/bin/sh
exec unshare -m --propagation private sh -c \\
    'mount --bind "\$0" /etc/resolv.conf && exec "\$@"' \\
    $d/resolv.conf $t->{valgrind}$t->{nginx} "\$@"
EOF
chmod 0755, "$d/nginx-ns";

# valgrind, if any, runs inside the namespace, on nginx itself

$t->{nginx} = "$d/nginx-ns";
$t->{valgrind} = '';

my $timeout = $delay + 5;

$t->write_config(<<"EOF2");
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://quotes.stockprice.test:%%PORT_1%%/prices
                    zone=stocks:1m interval=200ms timeout=${timeout}s;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location = /status { stockprice_status stocks; }
    }
}
EOF2

$t->run;

ok($t->wait_for(sub { -e "$d/dns.count" }, 10), 'the name is looked up');

my $start = time;

# while the name is looked up: 10 requests, each answered at once

my ($slow, $n) = (0, 0);

while ($n < 10 && time - $start < $delay - 0.5) {
    my $t0 = time;
    my $st = $t->status;
    $slow++ if time - $t0 > $t->limit(0.3);
    $n++;
    ok(defined $st && $st->{refreshes} == 0,
       "request $n during the lookup: answered, no refresh yet")
        if $n <= 3;
    sleep 0.1;
}

ok($n >= 5, "$n requests answered while the name was looked up");
is($slow, 0, 'none of them waited on the lookup');

ok($t->wait_status('refreshes', 1, 10), 'then the refresh succeeds');
ok(time - $start >= $delay - 0.2, 'after the DNS answer, not before ('
   . sprintf('%.1f s', time - $start) . ')');
is($t->status->{symbols}, 3, 'the upstream\'s symbols');

# more refreshes: the answer is kept (one A and one AAAA query at most)

ok($t->wait_status('refreshes', 6, 10), 'five refreshes more');

my ($queries) = $t->read_file('dns.count') =~ /(\d+)/;

ok(defined $queries && $queries <= 2,
   'one lookup for all of them (' . ($queries // 0) . ' queries)');

unlike($t->read_file('error.log'), qr/resolves host names synchronously/,
       'libcurl resolves asynchronously: no warning');

$t->done;

kill 'TERM', $dns_pid;
waitpid $dns_pid, 0;

done_testing;
