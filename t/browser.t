#!/usr/bin/perl

# The live page (demo/www, CONTRACT section 7 "./build.sh run") and Swagger
# UI (/docs/) in a real browser: Debian's headless Chromium driven by
# playwright-core (tools/node_modules) from t/browser/page.mjs.
#
# nginx runs demo/nginx.conf as ./build.sh run makes it (the %%...%%
# placeholders filled the same way) with three changes for a test: its own
# free port instead of 8080 (everywhere: the listen and the feed's own
# URLs), interval=2s instead of 10s (prices move while the test looks), and
# the error log in the prefix instead of stderr (checked for alerts at the
# end).  Once the zone has three refreshes (so that every symbol has kept
# history before the page loads), page.mjs checks, each its own assertion
# here:
#
# - the page loads, and MSFT, AAPL and SAP appear with prices (prices the
#   API served for them) within 10 s, over the event stream (state "live");
# - a refresh changes a price shown, with the arrow, sign and colour of the
#   change since the previous record;
# - each sparkline has as many points as the symbol's kept records, more
#   than one, and one more with the next event;
# - the time of the last refresh and the health from the status ("ok",
#   authenticated, the counters) are shown;
# - a reload (SIGHUP) closes the stream: the browser reconnects with
#   Last-Event-ID (an id the page had received) and the page is live again
#   and updating;
# - without EventSource (deleted by an init script) the page polls the list
#   with If-None-Match, shows the prices and updates them;
# - on a phone-sized viewport nothing scrolls sideways;
# - no console error, no page error (but the one failed load Chromium logs
#   when the reload cuts the stream, see page.mjs), no request to anything
#   but the page's own host; the page carries a strict
#   Content-Security-Policy (a <meta>: demo/nginx.conf sends none), has no
#   inline script or style, and nothing violates the policy;
# - /docs/ lists the prices paths (skipped while docs/openapi.yaml is
#   absent).
#
# Screenshots: build/page.png, build/page-phone.png (and build/docs.png).
# Skipped only when /usr/bin/chromium or tools/node_modules/playwright-core
# is missing.  The browser must be gone at the end: one left behind (found
# by a switch on its command line) is a failure, and is killed.

use strict;
use warnings;

use IO::Select;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use StockTest;

my $ROOT = $StockTest::ROOT;
my $CHROMIUM = '/usr/bin/chromium';
my $PLAYWRIGHT = "$ROOT/tools/node_modules/playwright-core";

plan skip_all => "$CHROMIUM is not installed (Debian's chromium; ./build.sh"
                 . " installs it)"
    unless -x $CHROMIUM;
plan skip_all => "$PLAYWRIGHT is missing (./build.sh test installs the"
                 . " tools of tools/package.json with npm ci)"
    unless -f "$PLAYWRIGHT/package.json";

# what page.mjs reports, in its order
my @CHECKS = qw(load live change sparkline refresh-time health reconnect
                screenshot poll-prices poll-update health-failing offline phone
                console origin csp
                docs);

my ($node) = grep { -x } map { "$_/node" } split /:/, $ENV{PATH} // '';
$node //= '/usr/bin/node';

my $t = StockTest->new;
my $dir = $t->dir;
my $port = $t->port(0);
my $mark = "--stockprice-browser-test=$dir";
my $node_pid;

###############################################################################

# demo/nginx.conf as ./build.sh run_demo fills it in, on a port of our own

my $module = $ENV{STOCKPRICE_MODULE}
             || "$ROOT/build/ngx_http_stockprice_module.so";

my $conf = do {
    open my $fh, '<', "$ROOT/demo/nginx.conf"
        or die "demo/nginx.conf: $!";
    local $/;
    <$fh>;
};

$conf =~ s/%%MODULE%%/$module/g;
$conf =~ s/%%DEMO%%/$ROOT\/demo/g;
$conf =~ s/%%ROOT%%/$ROOT/g;
$conf =~ s/%%PREFIX%%/$dir/g;

# the state= directory, as ./build.sh run makes it: the workers' to write
chmod 0711, $dir;
mkdir "$dir/state";
chmod 01777, "$dir/state";

my $ports = $conf =~ s/\b127\.0\.0\.1:8080\b/127.0.0.1:$port/g;
my $intervals = $conf =~ s/\binterval=10s\b/interval=2s/g;
my $logs = $conf =~ s/^error_log\s+stderr\s+\w+;/error_log $dir\/error.log info;/mg;

ok($ports >= 3 && $intervals == 1 && $logs == 1 && $conf !~ /%%\w+%%/,
   'demo/nginx.conf made into a test configuration (port, interval=2s,'
   . ' error log)')
    or diag("127.0.0.1:8080 replaced $ports times (3 expected), interval=10s"
            . " $intervals, error_log stderr $logs");

$t->write_config($conf);

my ($rc, $out) = $t->test_config;
is($rc, 0, 'nginx -t accepts it') or diag($out);

$t->run;

ok($t->wait_status('refreshes', 3, 15, '/api/StockPrice.status'),
   'three refreshes from the demo feed (kept history before the page loads)');

###############################################################################

# page.mjs: its results as they come, within 100 s (it stops itself at 80)

my $started = time;
my %result;
my @order;

$node_pid = open(my $from, '-|');
die "fork: $!" unless defined $node_pid;

if ($node_pid == 0) {
    open STDERR, '>', "$dir/node.log" or POSIX::_exit(126);
    $ENV{STOCKPRICE_URL} = "http://127.0.0.1:$port";
    $ENV{NGINX_PID} = $t->master_pid // 0;
    $ENV{STOCKPRICE_ROOT} = $ROOT;
    $ENV{BROWSER_MARK} = $mark;
    $ENV{CHROMIUM} = $CHROMIUM;
    exec($node, "$ROOT/t/browser/page.mjs")
        or print STDERR "exec $node: $!\n";
    POSIX::_exit(127);
}

{
    my $sel = IO::Select->new($from);
    my $buf = '';
    my $end = time + 100;
    my $eof = 0;

    while (!$eof) {
        my $left = $end - time;
        last if $left <= 0;
        next unless $sel->can_read($left);

        my $n = sysread $from, my $chunk, 65536;
        $eof = 1 unless $n;
        $buf .= $chunk if $n;

        while ($buf =~ s/\A([^\n]*)\n//) {
            my $line = $1;
            next unless $line =~ /^RESULT (\{.*\})$/;
            my $r = eval { JSON::PP->new->decode($1) } or next;
            push @order, $r->{id} unless $result{ $r->{id} };
            $result{ $r->{id} } = $r;
        }
    }

    unless ($eof) {
        diag('t/browser/page.mjs did not end within 100 s: stopped');
        kill 'TERM', $node_pid;
        for (1 .. 100) {
            last if waitpid($node_pid, WNOHANG) != 0;
            sleep 0.05;
        }
        kill 'KILL', $node_pid;
    }

    close $from;
    waitpid($node_pid, 0);
    $node_pid = undef;
}

my %known = map { $_ => 1 } @CHECKS;

for my $id (@CHECKS) {
    my $r = $result{$id};

    unless ($r) {
        fail("$id: not reported by t/browser/page.mjs");
        next;
    }

    if (defined $r->{skip}) {
        SKIP: { skip "$r->{name}: $r->{skip}", 1 }
        next;
    }

    ok($r->{ok}, $r->{name}) or diag("$id: " . ($r->{diag} // ''));
}

fail("unknown check reported: $_") for grep { !$known{$_} } @order;

my $took = time - $started;
ok($took < $t->limit(60),
   sprintf 'the browser part took %.1f s (under 60)', $took);

my @left = browser_left();
ok(!@left, 'the browser has exited') or diag("left behind: @left");
end_browser(@left);

if (grep { !$_->{ok} && !defined $_->{skip} } values %result
    or keys %result < @CHECKS)
{
    diag("t/browser/page.mjs said:\n" . $t->read_file('node.log'));
}

$t->done;

done_testing;

###############################################################################

# the processes of the browser started here, by the switch on its command
# line (the browser process; its renderers are in its process group)

sub browser_left {
    my @pids;

    for my $f (glob '/proc/[0-9]*/cmdline') {
        open my $fh, '<', $f or next;
        my $cmd = do { local $/; <$fh> } // '';
        close $fh;
        push @pids, $f =~ m{/proc/(\d+)/} if grep { $_ eq $mark } split /\0/, $cmd;
    }

    return grep { StockTest::alive($_) } @pids;
}


sub end_browser {
    for my $pid (@_) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my ($pgrp) = (<$fh> // '') =~ /^\d+ \(.*\) \S+ \d+ (\d+)/;
        close $fh;

        # playwright starts the browser as the leader of its own group
        kill 'KILL', ($pgrp && $pgrp == $pid) ? -$pid : $pid;
    }
}


END {
    if ($node_pid) {
        kill 'TERM', $node_pid;
        for (1 .. 60) {
            last if waitpid($node_pid, WNOHANG) != 0;
            sleep 0.05;
        }
        kill 'KILL', $node_pid;
    }

    end_browser(browser_left()) if $mark;
}
