#!/usr/bin/perl

# ./build.sh bench: the module side by side with nginx's own ceilings, in
# one run, on this machine.  Prints figures; asserts nothing.
#
#   throughput   wrk (keep-alive) in alternating rounds A B C C B A ...
#                against one nginx (worker_processes 1, access_log off):
#                the module's list, "return 200" with the very same bytes,
#                a static file of the same bytes (sendfile); 3 symbols and
#                5,000 symbols (where "return" cannot hold 900 KB), and
#                GET /api/StockPrice/SYM at 5,000 symbols.  Per round: req/s
#                and the worker's CPU time per request (/proc/PID/schedstat)
#   refresh      worker CPU per refresh of 5,000 records (interval=200ms,
#                no clients), minus the same worker idle: today's shape,
#                and the same records nested as a provider sends them
#                (records=, *_field= pointers, nanosecond times; the same
#                information), in alternating samples
#   zone         bytes per record at history=1 (5,000 symbols) and
#                history=100 (500 symbols, 100 refreshes)
#   latency      wrk --latency p50/p99/max of GET /api/StockPrice/S2500
#                while 5,000 records are refreshed every 200 ms, while 50
#                symbols are asked one request each ($symbol, concurrency=4)
#                every second, and idle
#
# The feeds run in a second nginx, so that making 5,000 prices does not
# count as the module's work; the 5,000-symbol zone polls a file holding
# one answer of that feed (the module parses and stores it all the same,
# with new ids), so that the feed does not compete for the two cores.
#
# Environment: NGINX_BIN, STOCKPRICE_MODULE, BENCH_ROUNDS (5),
# BENCH_SECONDS (3 per wrk run), BENCH_KEEP=1 keeps the temp directory,
# BENCH_ONLY=refresh,latency (any of throughput, refresh, latency, zone)
# runs only those parts.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use Socket;
use JSON::PP;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $NGINX = $ENV{NGINX_BIN} || '/usr/sbin/nginx';
my $MODULE = $ENV{STOCKPRICE_MODULE}
             || "$ROOT/build/ngx_http_stockprice_module.so";
my $ROUNDS = $ENV{BENCH_ROUNDS} || 5;
my $SECONDS = $ENV{BENCH_SECONDS} || 3;
my %ONLY = map { $_ => 1 }
           split /,/, $ENV{BENCH_ONLY} || 'throughput,refresh,latency,zone';

my $dir = tempdir('stockprice-bench-XXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{BENCH_KEEP});
chmod 0755, $dir;    # the workers (nobody) read the static files

my $ua = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
my $json = JSON::PP->new;
my @started;

$SIG{INT} = $SIG{TERM} = sub { stop_all(); exit 1 };

END { stop_all() }


sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "no free port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

my ($UP, $PORT) = (free_port(), free_port());


sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    binmode $fh;
    local $/;
    my $c = <$fh>;
    close $fh;
    return $c;
}


sub spit {
    my ($f, $c) = @_;
    open my $fh, '>', $f or die "$f: $!";
    binmode $fh;
    print $fh $c;
    close $fh;
}


sub common {
    my ($name) = @_;

    my $temps = join '', map { "    ${_}_temp_path $dir/${_}_temp_$name;\n" }
                         qw(client_body proxy fastcgi uwsgi scgi);

    return "load_module $MODULE;\n"
           . "daemon on;\npid $dir/$name.pid;\n"
           . "error_log $dir/$name.error.log notice;\n"
           . "worker_processes 1;\n"
           . "events { worker_connections 1024; }\n"
           . "http {\n$temps    access_log off;\n"
           . "    keepalive_requests 1000000;\n";
}


sub pid_of { my $p = slurp("$dir/$_[0].pid"); return $p =~ /(\d+)/ ? $1 : 0 }


sub worker_of {
    my ($name) = @_;

    my $master = pid_of($name) or return 0;

    for my $stat (glob '/proc/[0-9]*/stat') {
        my $l = slurp($stat);
        return $1 if $l =~ /^(\d+) \(nginx\) \S+ (\d+)/ && $2 == $master;
    }

    return 0;
}


sub wait_until {
    my ($code, $timeout) = @_;
    my $end = time + $timeout;
    while (time < $end) {
        my $r = $code->();
        return $r if $r;
        sleep 0.05;
    }
    return 0;
}


sub start {
    my ($name, $conf) = @_;

    spit("$dir/$name.conf", $conf);

    my $out = `$NGINX -p $dir/ -c $dir/$name.conf 2>&1`;
    die "nginx ($name) did not start: $out" if $?;

    push @started, $name unless grep { $_ eq $name } @started;

    wait_until(sub { worker_of($name) }, 5) or die "no worker ($name)";
}


sub stop {
    my ($name) = @_;

    my $pid = pid_of($name) or return;
    kill 'QUIT', $pid;
    wait_until(sub { !kill(0, $pid) || slurp("/proc/$pid/stat") =~ /\) Z/ },
               10);
    @started = grep { $_ ne $name } @started;
}


sub stop_all { stop($_) for @started }


sub reload {
    my ($name, $conf) = @_;

    my $old = worker_of($name);

    spit("$dir/$name.conf", $conf);
    kill 'HUP', pid_of($name);

    wait_until(sub { my $w = worker_of($name); $w && $w != $old }, 10)
        or die "reload ($name) failed";
    wait_until(sub { !kill(0, $old) || slurp("/proc/$old/stat") =~ /\) Z/ },
               10);
}


sub get { $ua->get("http://127.0.0.1:$PORT$_[0]") }


sub status {
    my ($zone) = @_;
    my $r = get("/status/$zone");
    return $r->{success} ? $json->decode($r->{content}) : {};
}


sub cpu_ns {
    my ($pid) = @_;
    my ($ns) = split ' ', slurp("/proc/$pid/schedstat");
    return $ns // 0;
}


# one wrk run: req/s, requests, worker CPU ns, latency (us) p50 p99 max

sub wrk {
    my ($path, %o) = @_;

    my $w = worker_of('module');
    my $c0 = cpu_ns($w);
    my $out = `wrk -t1 -c$o{c} -d$o{d}s --latency http://127.0.0.1:$PORT$path 2>&1`;
    my $c1 = cpu_ns($w);

    my ($rps) = $out =~ /Requests\/sec:\s+([\d.]+)/;
    my ($n) = $out =~ /(\d+) requests in/;
    my ($errors) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
    my %lat;

    for my $q (qw(50 99)) {
        $lat{$q} = us($1, $2) if $out =~ /^\s+$q%\s+([\d.]+)(us|ms|s)\b/m;
    }

    $lat{max} = us($1, $2)
        if $out =~ /^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b/m;

    die "wrk failed on $path:\n$out" unless $rps && $n;
    die "wrk: $errors non-2xx answers on $path" if $errors;

    return { rps => $rps, n => $n, cpu => ($c1 - $c0) / $n / 1000,
             lat => \%lat };
}


# one keep-alive connection, one request at a time, each timed: latency
# in us (p50, p99, max) and the count of requests over 1 ms

sub probe {
    my ($path, $seconds) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT",
                                  Timeout => 5)
        or die "probe: $!";
    setsockopt($s, Socket::IPPROTO_TCP(), Socket::TCP_NODELAY(), 1);

    my $req = "GET $path HTTP/1.1\r\nHost: bench\r\n\r\n";
    my (@lat, $buf);
    my $end = time + $seconds;

    while (time < $end) {
        my $t = time;
        syswrite($s, $req) == length $req or die "probe: write: $!";

        $buf = '';

        for (;;) {
            sysread($s, $buf, 65536, length $buf) or die "probe: closed";
            my $h = index $buf, "\r\n\r\n";
            next if $h < 0;
            my ($len) = substr($buf, 0, $h) =~ /Content-Length: (\d+)/i;
            last if length($buf) >= $h + 4 + $len;
        }

        push @lat, (time - $t) * 1e6;
    }

    close $s;

    my @s = sort { $a <=> $b } @lat;

    return { 50 => $s[int(@s / 2)], 99 => $s[int(@s * 0.99)],
             max => $s[-1], slow => scalar(grep { $_ > 1000 } @s) };
}


sub us {
    my ($v, $unit) = @_;
    return $v * ($unit eq 's' ? 1e6 : $unit eq 'ms' ? 1e3 : 1);
}


sub median {
    my @s = sort { $a <=> $b } @_;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}


sub range {
    my ($fmt, @v) = @_;
    my @s = sort { $a <=> $b } @v;
    return sprintf "$fmt ($fmt–$fmt)", median(@v), $s[0], $s[-1];
}


sub nginx_string {
    my ($s) = @_;
    die "a body with \$ cannot be a return string\n" if $s =~ /\$/;
    $s =~ s/([\\'])/\\$1/g;
    return "'$s'";
}


# the feeds: 3 symbols, 5,000 symbols, 500 symbols

start('feeds', common('feeds') . <<"EOF");
    server {
        listen 127.0.0.1:$UP;
        location /small/ { stockprice_demo_feed; }
        location /big/ { stockprice_demo_feed count=5000; }
        location /mid/ { stockprice_demo_feed count=500; }
        location = /big/copy { default_type application/json;
                               alias $dir/static/feed5000.json; }
        location = /big/nested { default_type application/json;
                                 alias $dir/static/nested5000.json; }
    }
}
EOF

# one answer of the 5,000-symbol feed, served as a file: refreshed every
# 200 ms, it costs the feeds' nginx next to nothing, so that on two cores
# the latency figures measure the module, not the feed making 5,000 prices

mkdir "$dir/static";

{
    my $r = $ua->get("http://127.0.0.1:$UP/big/prices");
    die "the 5,000-symbol feed: $r->{status}" unless $r->{success};
    spit("$dir/static/feed5000.json", $r->{content});

    # the same records nested as Polygon's snapshot nests them, times in
    # ns: the same information (no id, a number for the ISO string), so
    # that the figure is the shape's cost, not that of more fields

    my $i = 0;
    my @t = map {
        { ticker => $_->{symbol},
          lastTrade => { p => $_->{price},
                         t => 1704067200123456789 + 1000 * $i++ } }
    } @{ $json->decode($r->{content}) };

    spit("$dir/static/nested5000.json",
         $json->encode({ status => 'OK', count => scalar @t,
                         tickers => \@t }));

    # 50 of them, for one request each

    spit("$dir/fifty.txt",
         join '', map { sprintf "S%04d\n", 100 * $_ } 1 .. 50);
}

# the module under test, first with placeholders for the ceilings

sub module_conf {
    my ($ret_small, %o) = @_;

    my $big = $o{big} // '1h';
    my $mid = $o{mid} // '1h';
    my $history = $o{history} // 1;
    my $nested = $o{nested} // '1h';
    my $per = $o{per} // '1h';

    return common('module') . <<"EOF";
    sendfile on;
    tcp_nopush on;

    stockprice_poll http://127.0.0.1:$UP/small/prices zone=small:1m
                    interval=1h;
    stockprice_poll http://127.0.0.1:$UP/big/copy zone=big:32m
                    interval=$big max_size=4m;
    stockprice_poll http://127.0.0.1:$UP/mid/prices zone=mid:32m
                    interval=$mid history=$history max_size=4m;

    stockprice_poll http://127.0.0.1:$UP/big/nested zone=nested:32m
                    interval=$nested max_size=4m records=/tickers
                    symbol_field=/ticker price_field=/lastTrade/p
                    time_field=/lastTrade/t:ns;
    stockprice_poll http://127.0.0.1:$UP/big/prices?symbols=\$symbol
                    zone=per:1m interval=$per concurrency=4
                    symbols_file=$dir/fifty.txt;

    # never gets data: what a 32m zone uses empty
    stockprice_poll http://127.0.0.1:$UP/none zone=empty:32m interval=1h;

    server {
        listen 127.0.0.1:$PORT;

        location /api/StockPrice { stockprice small; }
        location = /return/small {
            default_type application/json;
            return 200 $ret_small;
        }
        location = /static/small.json { root $dir; }

        location /big/api/StockPrice { stockprice big; }
        location = /static/big.json { root $dir; }

        location /status/ {
            location = /status/small { stockprice_status small; }
            location = /status/big { stockprice_status big; }
            location = /status/mid { stockprice_status mid; }
            location = /status/nested { stockprice_status nested; }
            location = /status/per { stockprice_status per; }
            location = /status/empty { stockprice_status empty; }
        }
    }
}
EOF
}

my $t0 = time;

start('module', module_conf("'[]'"));

for my $z (qw(small big mid nested per)) {
    wait_until(sub { (status($z)->{refreshes} // 0) >= 1 }, 15)
        or die "zone $z: no refresh\n" . slurp("$dir/module.error.log");
}

my %body;

for my $s (['small', '/api/StockPrice'], ['big', '/big/api/StockPrice']) {
    my ($name, $path) = @$s;
    my $r = get($path);
    die "$path: $r->{status}" unless $r->{success};
    $body{$name} = $r->{content};
    spit("$dir/static/$name.json", $body{$name});
}

reload('module', module_conf(nginx_string($body{small})));

for my $c (['module list, 3 symbols', '/api/StockPrice', 'small'],
           ['return 200, same bytes', '/return/small', 'small'],
           ['static file, same bytes', '/static/small.json', 'small'],
           ['module list, 5,000 symbols', '/big/api/StockPrice', 'big'],
           ['static file, same bytes', '/static/big.json', 'big'])
{
    my ($what, $path, $name) = @$c;
    get($path)->{content} eq $body{$name}
        or die "$what: not the same bytes as the module's list";
}

my $sym = get('/big/api/StockPrice/S2500');
die 'per-symbol GET failed' unless $sym->{success};

printf "stockprice benchmark, %s\n", strftime('%Y-%m-%d %H:%M UTC', gmtime);
printf "bodies: 3 symbols %d bytes, 5,000 symbols %d bytes, "
       . "/api/StockPrice/S2500 %d bytes\n",
       length $body{small}, length $body{big}, length $sym->{content};
printf "wrk -t1 -c16 -d%ds per run, %d rounds, alternating; "
       . "CPU = nginx worker time per request\n\n", $SECONDS, $ROUNDS;

# throughput, alternating rounds

my @groups = (
    [ '3 symbols', [ [ 'module', '/api/StockPrice' ],
                     [ 'return 200', '/return/small' ],
                     [ 'static', '/static/small.json' ] ] ],
    [ '5,000 symbols', [ [ 'module', '/big/api/StockPrice' ],
                         [ 'static', '/static/big.json' ] ] ],
    [ '5,000 symbols, one symbol',
      [ [ 'module', '/big/api/StockPrice/S2500' ] ] ],
);

my %res;

for my $g ($ONLY{throughput} ? @groups : ()) {
    my ($gname, $targets) = @$g;

    for my $round (1 .. $ROUNDS) {
        # A B C, then C B A, ...: no target always runs first
        for my $tg ($round % 2 ? @$targets : reverse @$targets) {
            my $r = wrk($tg->[1], c => 16, d => $SECONDS);
            push @{ $res{$gname}{ $tg->[0] }{rps} }, $r->{rps};
            push @{ $res{$gname}{ $tg->[0] }{cpu} }, $r->{cpu};
        }
    }

    print "$gname\n";
    printf "  %-12s %28s %26s\n", '', 'req/s median (min–max)',
           'CPU us/req median (min–max)';

    for my $tg (@$targets) {
        my $x = $res{$gname}{ $tg->[0] };
        printf "  %-12s %28s %26s\n", $tg->[0], range('%.0f', @{ $x->{rps} }),
               range('%.2f', @{ $x->{cpu} });
    }

    my $m = $res{$gname}{module};

    for my $tg (@$targets[1 .. $#$targets]) {
        my $x = $res{$gname}{ $tg->[0] };
        printf "  module / %-10s req/s %.3f, CPU per request %.3f\n",
               $tg->[0], median(@{ $m->{rps} }) / median(@{ $x->{rps} }),
               median(@{ $m->{cpu} }) / median(@{ $x->{cpu} });
    }

    print "\n";
}

# zone bytes per record, history=1: 5,000 symbols

my $big = status('big');
my $empty = status('empty');

# refresh cost: 5,000 records refreshed every 200 ms, no clients; the idle
# worker over as long a time is the baseline

my $ret = nginx_string($body{small});

# worker CPU per refresh of zone $z refreshed every 200 ms, 4 s samples

sub refresh_cost {
    my ($z, $idle_per_s) = @_;

    reload('module', module_conf($ret, $z => '200ms'));

    my $n0 = status($z)->{refreshes} // 0;
    wait_until(sub { (status($z)->{refreshes} // 0) >= $n0 + 2 }, 15)
        or die "$z: no refreshes";

    my $w = worker_of('module');
    my $r0 = status($z);
    my $c0 = cpu_ns($w);
    my $start = time;
    sleep 4;
    my $c1 = cpu_ns($w);
    my $secs = time - $start;
    my $n = status($z)->{refreshes} - $r0->{refreshes};

    return (($c1 - $c0 - $idle_per_s * $secs) / 1e6 / $n, $n, $secs);
}

if ($ONLY{refresh}) {
    my $w = worker_of('module');
    my $c0 = cpu_ns($w);
    sleep 3;
    my $idle_per_s = (cpu_ns($w) - $c0) / 3;

    # A B B A A B: neither shape always first

    my (%per, %nref, %took);

    for my $z (qw(big nested nested big big nested)) {
        my ($ms, $n, $secs) = refresh_cost($z, $idle_per_s);
        push @{ $per{$z} }, $ms;
        $nref{$z} += $n;
        $took{$z} += $secs;
    }

    print "refresh (worker CPU per refresh of 5,000 records, 3 samples of "
          . "4 s each, alternating; the idle worker's "
          . sprintf('%.3f', $idle_per_s / 1e6) . " ms/s subtracted)\n";
    printf "  %-44s %s ms (%d refreshes in %.1f s)\n",
           "today's shape, a top-level array", range('%.2f', @{ $per{big} }),
           $nref{big}, $took{big};
    printf "  %-44s %s ms (%d refreshes in %.1f s)\n",
           'nested, 4 pointers, nanosecond times',
           range('%.2f', @{ $per{nested} }), $nref{nested}, $took{nested};
    printf "  nested / today's: %.2f\n\n",
           median(@{ $per{nested} }) / median(@{ $per{big} });
}

# latency with refreshes every 200 ms, then idle, then again

my %lat;
my %quiet = (busy => 0, idle => 0, per => 0);
my %label = (
    idle => 'refreshes idle',
    busy => 'refreshing 5,000 records every 200 ms',
    per  => '50 requests of one symbol every second',
);

my %during = (busy => [ big => '200ms' ], per => [ per => '1s' ]);

for my $k ($ONLY{latency} ? qw(busy idle per per idle busy) : ()) {
    reload('module', module_conf($ret, @{ $during{$k} // [] }));

    # a refresh due under the old interval may still come
    sleep 1;

    my $z = $during{$k} ? $during{$k}[0] : 'big';
    my $n0 = status($z)->{refreshes};
    my $r = wrk('/big/api/StockPrice/S2500', c => 8, d => 5);
    my $p = probe('/big/api/StockPrice/S2500', 3);
    $quiet{$k} += status($z)->{refreshes} - $n0;

    push @{ $lat{$k}{$_} }, $r->{lat}{$_} for qw(50 99 max);
    push @{ $lat{"probe $k"}{$_} }, $p->{$_} for qw(50 99 max slow);
}

if ($ONLY{latency}) {
    print "latency of GET /big/api/StockPrice/S2500 (wrk -t1 -c8, 2 x 5 s "
          . "each, alternating)\n";
    for my $k (qw(idle busy per)) {
        printf "  %-50s p50 %6.0f us  p99 %6.0f us  max %6.0f us\n",
               "$label{$k} ($quiet{$k} refreshes)",
               median(@{ $lat{$k}{50} }), median(@{ $lat{$k}{99} }),
               (sort { $b <=> $a } @{ $lat{$k}{max} })[0];
    }
    for my $k (qw(busy per)) {
        printf "  p99 %s / idle: %.2f\n", $k eq 'busy' ? 'refreshing' : '$symbol',
               median(@{ $lat{$k}{99} }) / median(@{ $lat{idle}{99} });
    }

    print "\nthe same, one request at a time, each timed "
          . "(bench.pl's own client, 2 x 3 s each)\n";
    for my $k (qw(idle busy per)) {
        my $x = $lat{"probe $k"};
        printf "  %-50s p50 %6.0f us  p99 %6.0f us  max %6.0f us  "
               . "over 1 ms: %d\n", $label{$k},
               median(@{ $x->{50} }), median(@{ $x->{99} }),
               (sort { $b <=> $a } @{ $x->{max} })[0],
               $x->{slow}[0] + $x->{slow}[1];
    }
    for my $k (qw(busy per)) {
        printf "  p99 %s / idle: %.2f\n", $k eq 'busy' ? 'refreshing' : '$symbol',
               median(@{ $lat{"probe $k"}{99} })
               / median(@{ $lat{'probe idle'}{99} });
    }
    print "\n";
}

# history=100: 500 symbols refreshed until each has 100 records

if ($ONLY{zone}) {
    reload('module', module_conf($ret, mid => '50ms', history => 100));

    wait_until(sub { (status('mid')->{records} // 0) >= 500 * 100 }, 90)
        or warn "history=100: only " . status('mid')->{records}
                . " records\n";

    my $mid = status('mid');

    print "zone (bytes used beyond an empty zone of the same size)\n";
    printf "  history=1, %d symbols, %d records: %d bytes, %.1f per record\n",
           $big->{symbols}, $big->{records},
           $big->{zoneBytesUsed} - $empty->{zoneBytesUsed},
           ($big->{zoneBytesUsed} - $empty->{zoneBytesUsed})
               / $big->{records};
    printf "  history=100, %d symbols, %d records: %d bytes, "
           . "%.1f per record\n",
           $mid->{symbols}, $mid->{records},
           $mid->{zoneBytesUsed} - $empty->{zoneBytesUsed},
           ($mid->{zoneBytesUsed} - $empty->{zoneBytesUsed})
               / $mid->{records};
    printf "  a record as served: %.1f bytes of JSON "
           . "(list of 5,000 / 5,000)\n\n",
           length($body{big}) / 5000;
}

# the machine

my ($model) = slurp('/proc/cpuinfo') =~ /^model name\s*:\s*(.*)$/m;
my $ncpu = () = slurp('/proc/cpuinfo') =~ /^processor\s*:/mg;
my $kernel = (split ' ', slurp('/proc/version'))[2];
my $nv = `$NGINX -v 2>&1`;
chomp $nv;

printf "machine: %d CPUs, %s, Linux %s, %s; bench took %.0f s\n",
       $ncpu, $model // '?', $kernel // '?', $nv, time - $t0;

stop_all();
