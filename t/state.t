#!/usr/bin/perl

# Restart (CONTRACT section 6, issue 14.3): stockprice_poll state=FILE.
#
# - The zone's records are written to FILE (a temporary FILE.<pid>.tmp of
#   mode 0600, then rename()): at most once a second after a refresh that
#   changed the data, none after a 304 or a failure, and when a worker
#   exits (stop, quit, reload) if the zone holds newer data.
# - At start the master reads FILE: the zone serves the same bytes, ETag
#   and Last-Modified before the first refresh, which still happens at once
#   and asks with the restored validators (If-None-Match); status
#   "restored" and Prometheus stockprice_restored_records count the
#   records loaded.  history= and symbols= apply to what is loaded; the gzip
#   copy is there too.
# - After a stop (TERM) right after a change, after a crash of the whole
#   server (SIGKILL, 1.5 s after the last change), after a quit while an
#   upstream request hangs, and after a reload: the latest data.
# - A missing, truncated, bit-flipped, empty, random or other zone's file
#   is logged (notice, warn) and ignored, then written anew; an unwritable
#   directory is logged once (error), serving goes on.
# - The file never holds a password, client secret, secret= or header=
#   value, or token.
# - nginx -t: an empty state=, one file for two zones, a missing directory.

use strict;
use warnings;

use Test::More;
use Compress::Zlib qw(crc32);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use List::Util qw(max);
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $json = JSON::PP->new;
my %base = (auth => 0, keepalive => 1);
my $GZ = { 'Accept-Encoding' => 'gzip' };
my (undef, undef, $NOBODY_UID, $NOBODY_GID) = getpwnam('nobody');

die "t/state.t needs the user nobody (the workers' user)\n"
    unless defined $NOBODY_UID;

###############################################################################

# helpers

sub slurp {
    my ($path) = @_;

    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $s = <$fh>;
    close $fh;

    return $s // '';
}

sub plant {
    my ($path, $bytes) = @_;

    open my $fh, '>:raw', $path or die "$path: $!";
    print $fh $bytes;
    close $fh;
    chmod 0600, $path;
}

# a state file intact: its last line "end LENGTH CRC32", LENGTH the bytes
# before that line, CRC32 theirs (zlib's, 8 lowercase hex digits)

sub state_valid {
    my ($text) = @_;

    return 0 unless defined $text;

    my $at = rindex $text, "\nend ";
    $at = $at >= 0 ? $at + 1 : substr($text, 0, 4) eq 'end ' ? 0 : -1;

    return 0 unless $at >= 0
        && substr($text, $at) =~ /\Aend (\d+) ([0-9a-f]{8})\n\z/;

    return $1 == $at && sprintf('%08x', crc32(substr $text, 0, $at)) eq $2;
}

# the file resealed after an edit: a new end line for the bytes before it

sub reseal {
    my ($body) = @_;

    return $body . sprintf "end %d %08x\n", length $body, crc32($body);
}

# a file like "good" (a valid one) with n symbols S00001.. instead, each
# with one record made from good's AAPL record (its id's end changed)

sub crowded {
    my ($good, $n) = @_;

    my ($head) = $good =~ /\A(.*?\n)symbol /s or return '';
    my ($rec) = $good =~ /^(\{"id":"[^"]+","symbol":"AAPL".*)$/m or return '';

    $head =~ s/^symbols \d+$/symbols $n/m;
    $head =~ s/^records \d+$/records $n/m;

    my $body = $head;

    for my $i (1 .. $n) {
        my $sym = sprintf 'S%05d', $i;
        (my $r = $rec) =~ s/"symbol":"AAPL"/"symbol":"$sym"/;
        $r =~ s/^(\{"id":"[^"]{31})[0-9a-f]{5}/$1 . sprintf('%05x', $i)/e;
        $body .= "symbol \"$sym\" 1 1\n$r\n";
    }

    return reseal($body);
}

# the records of a state file, by symbol, newest first: its JSON lines

sub state_records {
    my ($text) = @_;

    my %by;

    for my $l (split /\n/, $text // '') {
        next unless $l =~ /^\{/;
        my $r = eval { $json->decode($l) } or next;
        push @{ $by{ $r->{symbol} // '' } }, $l;
    }

    return \%by;
}

# the record texts of a served array, as rendered (flat objects)

sub body_records {
    my ($body) = @_;

    return () unless defined $body && $body =~ /^\[(.*)\]$/s && $1 ne '';

    return split /(?<=\}),(?=\{)/, $1;
}

sub as_array { '[' . join(',', @_) . ']' }

sub iso2epoch {
    my ($s) = @_;

    my ($y, $mo, $d, $h, $mi, $sec, $frac) =
        ($s // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z$/
        or return undef;

    return timegm($sec, $mi, $h, $d, $mo - 1, $y) + ($frac // 0);
}

# the measurementTimeStamp (epoch) of the newest record in a list body

sub newest_mts {
    my ($body) = @_;

    my $list = eval { $json->decode($body) } or return undef;
    my @t = grep { defined } map { iso2epoch($_->{measurementTimeStamp}) }
            @$list;

    return @t ? max(@t) : undef;
}

# inode, size, mtime, ctime; '' when there is no file

sub file_sig {
    my ($path) = @_;

    my @s = Time::HiRes::stat($path) or return '';

    return "$s[1]:$s[7]:$s[9]:$s[10]";
}

sub file_mode {
    my ($path) = @_;

    my @s = stat $path or return -1;

    return $s[2] & 07777;
}

sub tmp_files {
    my ($path) = @_;

    return glob "$path.*.tmp";
}

sub log_mark { length($_[0]->read_file('error.log')) }

sub log_since {
    my ($t, $mark) = @_;

    my $log = $t->read_file('error.log');

    return length($log) > $mark ? substr($log, $mark) : '';
}

sub bad_levels {
    my ($text) = @_;

    return join "\n", grep { /\[(alert|crit|emerg)\]/ } split /\n/, $text;
}

sub prom_restored {
    my ($t, $zone, $url) = @_;

    my $r = $t->get(($url // '/status') . '?format=prometheus');

    return undef unless $r->{status} == 200;

    my ($v) = $r->{content}
        =~ /^stockprice_restored_records\{zone="\Q$zone\E"\} (\S+)$/m;

    return $v;
}

# the prices requests an upstream saw after its first "since"

sub asked_since {
    my ($up, $since) = @_;

    my $s = $up->stats;
    my @p = grep { ($_->{path} // '') eq '/prices' } @{ $s->{requests} // [] };
    my $new = ($s->{prices} // 0) - $since;

    return $new > 0 ? @p[-($new > @p ? @p : $new) .. -1] : ();
}

sub gunzipped {
    my ($bytes) = @_;

    my $out;
    gunzip(\$bytes => \$out, Strict => 1) or return undef;

    return $out;
}

# a directory the workers (nobody) may write in, inside a test prefix the
# workers may pass through

sub worker_dir {
    my ($t, $name) = @_;

    chmod 0711, $t->dir;

    my $d = $t->dir . "/$name";
    mkdir $d, 0700;
    chown $NOBODY_UID, $NOBODY_GID, $d or die "chown $d: $!";

    return $d;
}

###############################################################################

# A: one zone with history=2, two workers, the file relative to the prefix

my $t = StockTest->new;
my $up = FakeUpstream->start($t);
my $sdir = worker_dir($t, 'state');
my $file = "$sdir/stocks.state";

# the log's words for zone "stocks" and its file

my $Z = 'stockprice zone "stocks"';
my $SF = '"[^"]*/state/stocks\.state"';

my $A = <<'EOF';
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:256k
                    interval=100ms timeout=3s history=HISTORY
                    symbols=SYMBOLS state=state/stocks.state;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location /gz/api/StockPrice { stockprice stocks gzip=on; }
        location = /status { stockprice_status stocks; }
    }
}
EOF

sub config_a {
    my (%o) = @_;

    my $c = $A;
    $c =~ s/HISTORY/$o{history} \/\/ 2/e;
    $c =~ s/SYMBOLS/$o{symbols} \/\/ 'MSFT,AAPL,SAP'/e;
    $t->write_config($c);
}

sub prices_count { $up->stats->{prices} // 0 }

my $D1 = 'Wed, 01 May 2024 10:00:00 GMT';
my $D2 = 'Wed, 01 May 2024 11:00:00 GMT';

$up->control({ %base, etag => '"v1"', last_modified => $D1 });
config_a();

my $mark = log_mark($t);
$t->run;

like(log_since($t, $mark),
     qr/\[notice\] .*$Z: no state file $SF yet/,
     'no file yet: a notice says so');
is($t->status->{restored}, 0, 'no file yet: restored 0');
ok($t->wait_status('refreshes', 1), 'first refresh');
ok($t->wait_for(sub { -e $file }, 5), 'the state file appears');
my $first_write = time;
ok(state_valid(slurp($file)), 'it ends with a valid "end LENGTH CRC32" line');
is(sprintf('%04o', file_mode($file)), '0600', 'its mode is 0600');

# a change within a second of that write: only the write at exit can keep
# it (unless a throttled write follows on its own)

$up->control({ %base, etag => '"v2"', last_modified => $D2 });
my $etag1 = $t->get('/api/StockPrice')->{headers}{etag} // '';
ok($t->wait_for(sub {
    ($t->get('/api/StockPrice')->{headers}{etag} // '') ne $etag1
        && ($t->status->{records} // 0) == 6 }, 5),
   'a changed upstream: new data, 6 records (3 symbols, history 2)');

$up->control({ %base, mode => 'status', status => 500 });

my %was = (
    list  => $t->get('/api/StockPrice'),
    aapl  => $t->get('/api/StockPrice/AAPL'),
    gz    => $t->get('/gz/api/StockPrice', %$GZ),
);
my @hist_was = map { $t->get("/api/StockPrice/$_")->{content} }
               qw(AAPL MSFT SAP);

diag(sprintf('the change came %.2f s after the first write; the file had '
             . 'it before the stop: %s', time - $first_write,
             as_array(@{ state_records(slurp($file))->{AAPL} // [] })
             eq $was{aapl}{content} ? 'yes' : 'no'))
    if $ENV{TEST_VERBOSE};

my $took = $t->stop('TERM');
ok(defined $took, 'stop (TERM)');

my $text = slurp($file);
ok(state_valid($text), 'after the stop: the file is valid');
my $recs = state_records($text);
is(join(' ', map { as_array(@{ $recs->{$_} // [] }) } qw(AAPL MSFT SAP)),
   join(' ', @hist_was),
   'after the stop: the file holds every record as served, newest first');
is(join(' ', tmp_files($file)), '', 'no temporary file left after the stop');
is(sprintf('%04o', file_mode($file)), '0600', 'mode 0600');

# 1. the same bytes, ETag and Last-Modified before any refresh succeeds

my $n0 = prices_count();
$mark = log_mark($t);
$t->run;

my $r = $t->get('/api/StockPrice');
is($r->{content}, $was{list}{content},
   'restarted: the same list, byte for byte');
is($r->{headers}{etag}, $was{list}{headers}{etag}, 'restarted: the same ETag');
is($r->{headers}{'last-modified'}, $was{list}{headers}{'last-modified'},
   'restarted: the same Last-Modified');

$r = $t->get('/api/StockPrice/AAPL');
is($r->{content}, $was{aapl}{content},
   'restarted: the same history of AAPL (2 records)');
is($r->{headers}{etag}, $was{aapl}{headers}{etag},
   'restarted: the same ETag of AAPL');
is($r->{headers}{'last-modified'}, $was{aapl}{headers}{'last-modified'},
   'restarted: the same Last-Modified of AAPL');

$r = $t->get('/api/StockPrice',
             'If-None-Match' => $was{list}{headers}{etag} // '"none"');
is($r->{status}, 304, 'restarted: If-None-Match with the old ETag: 304');

# 10. the gzip copy

$r = $t->get('/gz/api/StockPrice', %$GZ);
is($r->{headers}{'content-encoding'}, 'gzip',
   'restarted: the gzip=on list is served gzipped');
is(gunzipped($r->{content}), $was{list}{content},
   'restarted: it decompresses to the identity list');
is($r->{headers}{etag}, $was{gz}{headers}{etag},
   'restarted: the gzip ETag as before');

my $st = $t->status;
is($st->{restored}, 6, 'status: restored 6 (3 symbols x history 2)');
is($st->{records}, 6, 'status: records 6');
is($st->{refreshes}, 0, 'status: no refresh has succeeded (upstream 500)');
is(prom_restored($t, 'stocks'), 6,
   'prometheus: stockprice_restored_records{zone="stocks"} 6');
like(log_since($t, $mark),
     qr/\[notice\] .*$Z: 6 records of 3 symbols restored from $SF/,
     'the notice: 6 records of 3 symbols restored');

ok($t->wait_for(sub { prices_count() > $n0 }, 2),
   'the first refresh is still at once after start');
my ($first) = asked_since($up, $n0);
is($first && $first->{headers}{'if-none-match'}, '"v2"',
   'it asks with the restored If-None-Match "v2"');

# 2. the upstream unchanged: 304 to the restored validators, nothing moves

my $sig = file_sig($file);
my $nm0 = $up->stats->{not_modified} // 0;
$n0 = prices_count();

$up->control({ %base, etag => '"v2"', last_modified => $D2 });
ok($t->wait_status('refreshes', 1), 'the upstream answers again: a refresh');

my @ok = grep { ($_->{status} // 0) != 500 } asked_since($up, $n0);
is($ok[0] && $ok[0]{headers}{'if-none-match'}, '"v2"',
   'the first request answered asks with If-None-Match "v2"');
is($ok[0] && $ok[0]{status}, 304, 'and is answered 304');
ok(($up->stats->{not_modified} // 0) > $nm0, 'the upstream counted 304s');

$r = $t->get('/api/StockPrice');
is($r->{headers}{etag}, $was{list}{headers}{etag},
   'after the 304: still the same ETag');
is($r->{content}, $was{list}{content}, 'after the 304: the same bytes');

ok(!$t->wait_for(sub { file_sig($file) ne $sig }, 1.5, 1),
   'failed refreshes and 304s write nothing (the file unchanged 1.5 s)');

# 5. at most one write a second, each a rename of a new file

$up->control({ %base });

ok($t->wait_for(sub { file_sig($file) ne $sig }, 3),
   'changing prices: the file is written');

my ($renames, $inplace, $samples, %tmp) = (0, 0, 0);
my @last = split /:/, file_sig($file);
my $start = time;

while (time - $start < 5 && $samples < 1000) {
    sleep 0.01;
    $samples++;

    $tmp{$_} = 1 for tmp_files($file);

    my @now = split /:/, file_sig($file);
    next unless @now;

    if (!@last || $now[0] != $last[0]) {
        $renames++;

    } elsif ($now[1] != $last[1] || $now[2] != $last[2]) {
        $inplace++;
    }

    @last = @now;
}

my $window = time - $start;
my $allowed = int($window + 0.05) + 1;

ok($renames <= $allowed,
   sprintf('at most one write a second: %d renames in %.2f s (at most %d)',
           $renames, $window, $allowed));
ok($renames >= 3,
   sprintf('prices changing every 100 ms: written again and again '
           . '(%d renames in %.2f s, %d samples)', $renames, $window,
           $samples));
is($inplace, 0, 'never written in place: each write a new inode');
is(sprintf('%04o', file_mode($file)), '0600', 'still mode 0600');
diag('temporary files seen: ' . join(' ', sort keys %tmp))
    if $ENV{TEST_VERBOSE} && %tmp;
ok(!grep({ !/\/stocks\.state\.\d+\.tmp$/ } keys %tmp),
   'temporary files are named FILE.<pid>.tmp');

# 3. a crash of the whole server: the data of at most a second before

my %seen;
$start = time;

for (1 .. 200) {
    last if time - $start > 1.2;

    my $g = $t->get('/api/StockPrice');

    if ($g->{status} == 200) {
        $seen{ $g->{content} } = $g->{headers}{etag};
    }

    sleep 0.02;
}

my $f0 = $t->status->{failures} // 0;
$up->control({ %base, mode => 'status', status => 500 });
ok($t->wait_status('failures', $f0 + 1), 'the upstream fails: data frozen');

my $frozen = $t->get('/api/StockPrice');
$seen{ $frozen->{content} } = $frozen->{headers}{etag};

ok(!$t->wait_for(sub {
    ($t->get('/api/StockPrice')->{content} // '') ne $frozen->{content}
}, 1.6, 1), 'no change for 1.6 s before the crash');

my @pids = ($t->master_pid, $t->worker_pids);
is(scalar @pids, 3, 'a master and two workers to kill');
$t->allow_log(qr/exited on signal 9/);
kill 'KILL', @pids;
ok($t->wait_for(sub { !grep { StockTest::alive($_) } @pids }, 5),
   'SIGKILL: the master and workers are gone');

if (my @left = tmp_files($file)) {
    diag("after SIGKILL, left: @left");
    unlink @left;
}

$mark = log_mark($t);
$t->run;

$r = $t->get('/api/StockPrice');
my $age = (newest_mts($frozen->{content}) // 0)
          - (newest_mts($r->{content}) // -1e9);
diag(sprintf('after the crash: %s (%.3f s older than the last served)',
             $r->{content} eq $frozen->{content} ? 'the last data' : 'older',
             $age)) if $ENV{TEST_VERBOSE};
ok($r->{content} eq $frozen->{content}
   || (exists $seen{ $r->{content} } && $age >= 0 && $age <= 1.1),
   sprintf('after a crash: the last data served, or data served at most '
           . '1 s before it (%.3f s older)', $age));
is($r->{headers}{etag}, $seen{ $r->{content} } // '(not a body served)',
   'after a crash: with the ETag it was served with');
is($t->status->{restored}, 6, 'after a crash: restored 6');

# 8. quit while an upstream request hangs: within 1 s, the latest data kept

$up->control({ %base });
my $rf = $t->status->{refreshes} // 0;
ok($t->wait_status('refreshes', $rf + 3), 'changing prices again');

$sig = file_sig($file);
ok($t->wait_for(sub { file_sig($file) ne $sig }, 3), 'a write');

my $delayed = $up->stats->{delayed} // 0;
$up->control({ %base, delay => 8 });
ok($t->wait_for(sub { ($up->stats->{delayed} // 0) > $delayed }, 3),
   'an upstream request hangs');

my $hung = $t->get('/api/StockPrice')->{content};
@hist_was = map { $t->get("/api/StockPrice/$_")->{content} } qw(AAPL MSFT SAP);
diag('the file had the latest data before the quit: '
     . (join(' ', map { as_array(@{ state_records(slurp($file))->{$_} // [] }) }
                  qw(AAPL MSFT SAP)) eq join(' ', @hist_was) ? 'yes' : 'no'))
    if $ENV{TEST_VERBOSE};

$took = $t->stop;
ok(defined $took && $took < $t->limit(1),
   sprintf('quit with a hanging upstream request took %.2f s (under 1 s)',
           $took // -1));

$text = slurp($file);
$recs = state_records($text);
ok(state_valid($text), 'after the quit: the file is valid');
is(join(' ', map { as_array(@{ $recs->{$_} // [] }) } qw(AAPL MSFT SAP)),
   join(' ', @hist_was),
   'after the quit: the file holds the latest data served');
is(as_array(map { $recs->{$_}[0] // '' } qw(AAPL MSFT SAP)), $hung,
   'the newest record of each symbol is the list served');
is(join(' ', tmp_files($file)), '', 'no temporary file left after the quit');

# 7. history=3 -> history=2, and symbols= narrowed

$up->control({ %base });
config_a(history => 3);
$t->run;

is($t->status->{restored}, 6, 'history=3 loading a history=2 file: restored 6');
ok($t->wait_for(sub { ($t->status->{records} // 0) == 9 }, 5),
   'history=3: 9 records');

$nm0 = $up->stats->{not_modified} // 0;
$up->control({ %base, etag => '"v3"' });
ok($t->wait_for(sub { ($up->stats->{not_modified} // 0) > $nm0 }, 5),
   'the upstream now answers 304: data frozen');

my $list3 = $t->get('/api/StockPrice');
my %hist3 = map { $_ => $t->get("/api/StockPrice/$_")->{content} }
            qw(AAPL MSFT SAP);
is(scalar(my @three = body_records($hist3{AAPL})), 3, 'AAPL has 3 records');

$t->stop;
ok(state_valid(slurp($file)), 'a history=3 file written at quit');
is(scalar @{ state_records(slurp($file))->{AAPL} // [] }, 3,
   'it holds 3 records of AAPL');

$up->control({ %base, mode => 'status', status => 500 });
config_a(history => 2);
$mark = log_mark($t);
$t->run;

is($t->status->{restored}, 6, 'loaded with history=2: restored 6 (2 x 3)');
is($t->get('/api/StockPrice/AAPL')->{content},
   as_array((body_records($hist3{AAPL}))[0, 1]),
   'AAPL: its newest 2 records');
is($t->get('/api/StockPrice/SAP')->{content},
   as_array((body_records($hist3{SAP}))[0, 1]),
   'SAP: its newest 2 records');
is($t->get('/api/StockPrice')->{content}, $list3->{content},
   'the list: the same bytes');
like(log_since($t, $mark), qr/$Z: 6 records of 3 symbols restored/,
     'the notice: 6 records of 3 symbols');

$t->stop;

config_a(history => 2, symbols => 'MSFT,AAPL');
$n0 = prices_count();
$mark = log_mark($t);
$t->run;

$r = $t->get('/api/StockPrice');
is($r->{content},
   as_array(grep { $json->decode($_)->{symbol} ne 'SAP' }
            body_records($list3->{content})),
   'symbols=MSFT,AAPL: the list of those two, as they were');
isnt($r->{headers}{etag}, $list3->{headers}{etag},
     'symbols=MSFT,AAPL: another body, another ETag');
is($t->get('/api/StockPrice/SAP')->{status}, 404, 'SAP is not served');
is($t->get('/api/StockPrice/AAPL')->{content},
   as_array((body_records($hist3{AAPL}))[0, 1]),
   'AAPL: its 2 records as they were');
ok($t->wait_for(sub { ($t->status->{records} // 0) == 4 }, 2),
   "records 4: SAP's left out (2 symbols x 2)");
is($t->status->{symbols}, 2, 'symbols 2');
like(log_since($t, $mark),
     qr/\[notice\] .*$Z: \d+ records of \d+ symbols restored/,
     'the notice: records restored');
diag('symbols narrowed: restored ' . ($t->status->{restored} // 'none')
     . ' (records loaded; 4 of them kept)') if $ENV{TEST_VERBOSE};
ok($t->wait_for(sub { prices_count() > $n0 }, 2), 'the first refresh at once');
($first) = asked_since($up, $n0);
ok($first && !defined $first->{headers}{'if-none-match'},
   "another symbol list: the first request is unconditional (the "
   . "validators were another request's)");

$t->stop;

# 9. reload: the new workers write too

$up->control({ %base });
config_a();
$t->run;

$rf = $t->status->{refreshes} // 0;
ok($t->wait_status('refreshes', $rf + 2), 'refreshing before the reload');
# the newest measurementTimeStamp in the file (epoch), or 0

sub file_mts {
    my $recs = state_records(slurp($file));

    return max(0, map { iso2epoch(eval { $json->decode($_->[0])
                                           ->{measurementTimeStamp} }) // 0 }
                  values %$recs);
}

my $hup = time;
ok($t->reload(1), 'reloaded');
ok($t->wait_for(sub { file_mts() >= $hup }, 4),
   'after the reload the file is written again, with data fetched since');
ok(state_valid(slurp($file)), 'valid');

$t->done;

###############################################################################

# 4. missing and bad files: logged, ignored, written anew, loaded next time

my $e = StockTest->new;
my $eup = FakeUpstream->start($e);
my $edir = worker_dir($e, 'state');
my $efile = "$edir/stocks.state";

$eup->control({ %base, etag => '"e1"', last_modified => $D1 });

$e->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:256k
                    interval=100ms timeout=2s
                    state=%%TESTDIR%%/state/stocks.state;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF

$mark = log_mark($e);
$e->run;

my $seg = log_since($e, $mark);
like($seg, qr/\[notice\] .*$Z: no state file $SF yet/,
     'missing file: a notice');
is($e->status->{restored}, 0, 'missing file: restored 0');
ok($e->wait_status('refreshes', 1), 'missing file: a normal refresh');
is(scalar @{ $e->get_json('/api/StockPrice') // [] }, 3,
   'missing file: 3 symbols served');
ok($e->wait_for(sub { state_valid(slurp($efile)) }, 5),
   'missing file: the file appears, valid');
is(prom_restored($e, 'stocks'), 0, 'prometheus: restored 0');

$e->stop;

my $good = slurp($efile) // '';
my @bad;

SKIP: {
    skip 'no valid file of zone "stocks" to spoil', 50
        unless state_valid($good);

    my $mid = index($good, '{"id":"') + 12;
    my $flipped = $good;
    substr($flipped, $mid, 1) = chr(ord(substr $good, $mid, 1) ^ 1);

    (my $other = $good) =~ s/\nend \d+ [0-9a-f]{8}\n\z/\n/;
    $other =~ s/^zone "stocks"$/zone "other"/m;
    $other = reseal($other);

    # a file of 20 symbols made so loads: the one of 2,000 is refused for
    # its size alone

    plant($efile, crowded($good, 20));
    $e->run;
    is($e->status->{restored}, 20, '(a file of 20 symbols, made, loads)');
    $e->stop;

    srand(14);
    my $random = join '', map { chr int rand 256 } 1 .. 4096;

    ok(state_valid($other) && $other =~ /^zone "other"$/m,
       '(a file of zone "other", resealed)');

    @bad = (
        [ 'truncated', substr($good, 0, int(length($good) / 2)),
          'truncated', qr/truncated/ ],
        [ 'one bit flipped', $flipped,
          'checksum mismatch', qr/checksum mismatch/ ],
        [ 'empty', '', 'truncated (empty)', qr/truncated|empty/ ],
        [ 'random bytes', $random, 'not a state file', qr/not a state file/ ],
        [ 'another zone', $other, 'zone "other" is not this zone',
          qr/zone "other" is not this zone/ ],
        [ 'too large for the zone (2,000 symbols in 256k)',
          crowded($good, 2000), 'more than the zone takes',
          qr/does not fit in the zone|more than the zone takes/ ],
    );

    for my $case (@bad) {
        my ($name, $bytes, $reason, $why) = @$case;

        plant($efile, $bytes);

        my $case_mark = log_mark($e);
        $mark = $case_mark;
        $e->run;

        is($e->status->{restored}, 0, "$name: restored 0");

        my ($line) = log_since($e, $mark)
            =~ /^(.*$Z: state file $SF ignored: .*)$/m;
        like($line // '', qr/\[warn\]/,
             "$name: a warn line says it is ignored");
        like($line // '', qr/ignored: .*$why/, "$name: because $reason");

        ok($e->wait_status('refreshes', 1), "$name: a refresh");
        is(scalar @{ $e->get_json('/api/StockPrice') // [] }, 3,
           "$name: 3 symbols served");
        ok($e->wait_for(sub { my $s = slurp($efile);
                              state_valid($s) && $s ne $bytes }, 5),
           "$name: a valid file written anew");

        $e->stop;

        $mark = log_mark($e);
        $e->run;

        is($e->status->{restored}, 3, "$name: the new file loads next time");
        is(bad_levels(log_since($e, $case_mark)), '',
           "$name: no alert, crit or emerg");

        $e->stop;
    }
}

$e->done;

###############################################################################

# 6. no secret in the file: login password, client secret, secret= and
# header= values, tokens

my $k = StockTest->new;
my $bdir = worker_dir($k, 'state');

my $pass = 'Pw-login-7Qx2';
my ($cid, $csec) = ('client-id-9', 'Cs-oauth-4Zr8');
my $apikey = 'Sk-apikey-3Mn5';
my $hkey = 'Sk-header-6Tp1';
my $hstatic = 'Hv-static-8Wq3';

my $lup = FakeUpstream->start($k, name => 'login',
                              users => [[ 'alice', $pass ]]);
my $oup = FakeUpstream->start($k, name => 'oauth', port => $k->port(2),
                              oauth => 1, users => [[ $cid, $csec ]]);

$k->write_file('login.cred', $lup->credentials);
$k->write_file('oauth.cred', $oup->credentials);
$k->write_file('api.key', "$apikey\n");
$k->write_file('hdr.key', "$hkey\n");

$k->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll "http://127.0.0.1:%%PORT_1%%/prices?apikey=$key"
                    zone=login:256k interval=30s timeout=2s
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/login.cred
                    secret=key:%%TESTDIR%%/api.key
                    secret=hk:%%TESTDIR%%/hdr.key
                    "header=X-Api-Key: $hk"
                    "header=X-Static: Hv-static-8Wq3"
                    state=%%TESTDIR%%/state/login.state;

    stockprice_poll http://127.0.0.1:%%PORT_2%%/prices
                    zone=oauth:256k interval=200ms timeout=2s
                    auth=http://127.0.0.1:%%PORT_2%%/auth
                    auth_type=client_credentials
                    credentials=%%TESTDIR%%/oauth.cred
                    state=state/oauth.state;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /login/api/StockPrice { stockprice login; }
        location = /login/status { stockprice_status login; }
        location /oauth/api/StockPrice { stockprice oauth; }
        location = /oauth/status { stockprice_status oauth; }
    }
}
EOF

$k->run;

ok($k->wait_status('refreshes', 1, 10, '/login/status'), 'login: a refresh');
ok($k->wait_status('refreshes', 2, 10, '/oauth/status'), 'oauth: refreshes');

my ($req) = grep { $_->{path} eq '/prices' } @{ $lup->stats->{requests} };
ok($req && $req->{query} eq "apikey=$apikey"
   && ($req->{headers}{'x-api-key'} // '') eq $hkey
   && ($req->{headers}{'x-static'} // '') eq $hstatic,
   'login: the key in the URL and the headers were sent');

my $lfile = "$bdir/login.state";
my $ofile = "$bdir/oauth.state";

ok($k->wait_for(sub {
    state_valid(slurp($lfile)) && state_valid(slurp($ofile)) }, 5),
   'both state files written');

$k->stop;

my @tokens = (@{ $lup->stats->{issued} // [] },
              @{ $oup->stats->{issued} // [] });
ok(@tokens >= 2, 'tokens issued: ' . scalar @tokens);

for my $f ([ 'login', $lfile ], [ 'oauth', $ofile ]) {
    my ($zone, $path) = @$f;
    my $s = slurp($path) // '';

    ok(state_valid($s) && scalar(keys %{ state_records($s) }) == 3,
       "$zone: the file holds records of 3 symbols");

    my @found = grep { index($s, $_) >= 0 }
                ($pass, $csec, $apikey, $hkey, $hstatic, @tokens,
                 encode_base64("$cid:$csec", ''));
    is(join(' ', @found), '', "$zone: no password, secret, header or token");
}

my $auths = $lup->stats->{auth} // 0;
my $lprices = $lup->stats->{prices} // 0;
$k->run;

is($k->status('/login/status')->{restored}, 3, 'restarted: login restored 3');
ok($k->wait_for(sub { ($lup->stats->{auth} // 0) > $auths }, 5),
   'restarted: a new auth call (no token was kept)');
ok($k->wait_for(sub { ($lup->stats->{prices} // 0) > $lprices }, 5),
   'restarted with interval=30s: the first refresh within 5 s, at once');

$k->done;

###############################################################################

# a directory the workers cannot write in: one error line, serving goes on;
# logged again only after writes worked in between

my $w = StockTest->new;
my $wup = FakeUpstream->start($w);

chmod 0711, $w->dir;
my $rodir = $w->dir . '/ro';
mkdir $rodir, 0755;
my $rofile = "$rodir/stocks.state";

$wup->control({ %base });

$w->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:256k
                    interval=100ms timeout=2s state=ro/stocks.state;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF

$w->run;

my @wpids = $w->worker_pids;
my $cannot = '^.*stockprice zone "stocks": cannot write state file "[^"]*'
             . '/ro/stocks\.state": .*Permission denied.*$';
$cannot = qr/$cannot/m;
my $count = sub { my @l = $w->read_file('error.log') =~ /$cannot/g; scalar @l };

ok($w->wait_for(sub { $count->() >= 1 }, 5), 'not writable: an error line');
my ($eline) = $w->read_file('error.log') =~ /($cannot)/;
like($eline // '', qr/\[error\]/, 'at level error');

my $body0 = $w->get('/api/StockPrice')->{content};
ok(!$w->wait_for(sub { $count->() >= 2 }, 3, 1),
   'not every second: one line in 3 s of changing prices');
my $g = $w->get('/api/StockPrice');
ok($g->{status} == 200 && $g->{content} ne $body0,
   'serving goes on, with new prices');
is(join(' ', $w->worker_pids), join(' ', @wpids), 'no worker crashed');

chown $NOBODY_UID, $NOBODY_GID, $rodir;
ok($w->wait_for(sub { state_valid(slurp($rofile)) }, 3),
   'writable again: the file is written');

chown 0, 0, $rodir;
ok($w->wait_for(sub { $count->() >= 2 }, 3),
   'not writable again after writes worked: logged again');

$w->done;

###############################################################################

# 11. nginx -t

my $c = StockTest->new;
my $P = 'stockprice_poll http://127.0.0.1:1/prices';

$c->config_fails('state= empty', "$P zone=a:64k state=;",
                 qr/invalid state file/);
$c->config_fails('one file, two zones',
                 "$P zone=a:64k state=%%TESTDIR%%/s.state; "
                 . "$P zone=b:64k state=%%TESTDIR%%/s.state;",
                 qr/state file ".*s\.state" is already used by zone "a"/);
$c->config_fails('one file spelled two ways, two zones',
                 "$P zone=a:64k state=s.state; "
                 . "$P zone=b:64k state=%%TESTDIR%%/s.state;",
                 qr/state file ".*s\.state" is already used by zone "a"/);
$c->config_fails('a directory not found',
                 "$P zone=a:64k state=/nonexistent-stockprice/dir/s.state;",
                 qr/state file ".*": directory ".*" not found/);

$c->done;

done_testing;
