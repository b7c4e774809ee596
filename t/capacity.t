#!/usr/bin/perl

# Zone capacity: a zone sized by the README's rule takes every refresh,
# whatever came before it: history filling up, symbols growing, symbols
# added one by one, refreshes of alternating sizes, the longest records
# the module accepts; a zone tighter than the rule still takes a growing
# history (the holes of older snapshots are not lost); a zone below the
# rule keeps its data and says, by the rule, how large it must be.

use strict;
use warnings;

use Test::More;
use JSON::PP;
use IO::Uncompress::Gunzip qw(gunzip);
use POSIX qw(mkfifo);
use Time::HiRes qw(sleep time);

use lib 't/lib';
use StockTest;
use FakeUpstream;

# the README's "Zone size" rule (section "Directives", stockprice_poll):
# the bytes a zone needs for a number of symbols at a history

sub zone_bytes {
    my ($symbols, $history) = @_;

    return 40960 + $symbols * (140 + 550 * $history);
}

my $VT = '2024-05-01T10:53:37.2982063Z';

# one nginx polling the fake upstream into zone "stocks"; %o: zone (bytes
# or nginx size), history, interval, workers, timeout; setup: what the
# upstream serves, set up before nginx starts

sub start {
    my (%o) = @_;

    my $t = StockTest->new;
    my $up = FakeUpstream->start($t);

    $up->control({ auth => 0, %{ $o{control} // {} } });

    my $conf = <<'EOF';
%%MODULE%%
%%BASE%%
worker_processes WORKERS;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:ZONE
                    interval=INTERVAL timeout=TIMEOUT history=HISTORY
                    max_size=4m;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks GZIP; }
        location = /status { stockprice_status stocks; }
    }
}
EOF

    my %v = (WORKERS => $o{workers} // 2, ZONE => $o{zone},
             GZIP => $o{gzip} ? 'gzip=on' : '',
             INTERVAL => $o{interval} // '20ms',
             TIMEOUT => $o{timeout} // '60s', HISTORY => $o{history});

    $conf =~ s/\b(WORKERS|ZONE|INTERVAL|TIMEOUT|HISTORY|GZIP)\b/$v{$1}/g;

    $t->write_config($conf);

    $o{setup}->($t, $up) if $o{setup};

    $t->run;

    return ($t, $up);
}

# serve the bodies $make->(1) .. $make->($n), one per prices request, in
# that order: a writer process hands each to the upstream through a FIFO
# (the upstream reads its body_file at every request), so no refresh can
# get a body twice or miss one however the timers fall.  After the last,
# the next request waits (timeout=60s): the data stays as the last left it.

sub feed {
    my ($n, $make) = @_;

    return sub {
        my ($t, $up) = @_;

        my $fifo = $t->dir . '/body.fifo';

        mkfifo($fifo, 0600) or die "mkfifo: $!";
        $up->control({ auth => 0, mode => 'body', body_file => $fifo });

        $t->run_daemon(sub {
            local $SIG{PIPE} = 'IGNORE';

            for my $k (1 .. $n) {
                my $body = $make->($k);

                local $SIG{ALRM} = sub { die "no reader\n" };
                alarm 60;
                open my $fh, '>:raw', $fifo or die "fifo: $!";
                alarm 0;
                print $fh $body;
                close $fh;

                # the upstream has read it all once it counts the request;
                # only then may the FIFO be opened for the next body

                my $end = time + 30;
                sleep 0.002 while ($up->stats->{prices} // 0) < $k
                                  && time < $end;
            }
        });
    };
}

sub record {
    my ($sym, $price, $vt) = @_;

    return sprintf '{"symbol":"%s","price":%s,"valueDateTime":"%s"}',
                   $sym, $price, $vt // $VT;
}

sub syms { map { sprintf 'S%04d', $_ } @_ }

# until $n refreshes, or the first failure

sub wait_refreshes {
    my ($t, $n, $timeout) = @_;

    return $t->wait_for(sub {
        my $st = $t->status;
        return ($st->{failures} // 0) > 0
               || ($st->{refreshes} // 0) >= $n;
    }, $timeout // 30);
}

sub history_of {
    my ($t, $sym) = @_;

    (my $u = $sym) =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;

    return $t->get_json("/api/StockPrice/$u") // [];
}

sub failed {
    my ($t) = @_;

    my $st = $t->status;

    diag("last error: " . ($st->{lastError} // 'none')
         . ", zoneBytesUsed " . ($st->{zoneBytesUsed} // '?')
         . ' of ' . ($st->{zoneBytesTotal} // '?'))
        if $st->{failures};

    return $st->{failures} // -1;
}

# 1. history filling up: 1,000 symbols, history=50, a zone at the rule;
# each refresh adds a record per symbol until every history is full

{
    my $zone = zone_bytes(1000, 50);

    my ($t, $up) = start(zone => $zone, history => 50,
                         control => { symbols => [ syms(1 .. 1000) ] });

    $t->wait_for(sub {
        my $st = $t->status;
        return ($st->{failures} // 0) > 0
               || ($st->{records} // 0) >= 50000 && $st->{refreshes} >= 52;
    }, 40);

    my $st = $t->status;

    is($st->{zoneBytesTotal}, $zone,
       "history filling up: zone of $zone bytes (the rule), "
       . 'zoneBytesTotal says so');
    is($st->{records}, 50000,
       'history filling up: 50,000 records, every history full');
    ok($st->{refreshes} >= 50, 'history filling up: 50 refreshes or more');
    is(failed($t), 0, 'history filling up: no refresh failed');
    is(scalar @{ history_of($t, 'S0500') }, 50,
       'history filling up: a symbol has 50 records');
    is($st->{zoneBytesNeeded}, $zone,
       'history filling up: zoneBytesNeeded is the rule for 1,000 symbols');

    $t->done;
}

# 2. symbols growing: 4,000 to 5,000 symbols in steps of 50, history=1,
# a zone at the rule for 5,000

{
    my $zone = zone_bytes(5000, 1);
    my $n = 21;

    my ($t, $up) = start(zone => $zone, history => 1, workers => 1,
                         setup => feed($n, sub {
        my ($k) = @_;
        my $m = 4000 + 50 * ($k - 1);
        return '[' . join(',', map { record($_, 100 + $k) } syms(1 .. $m))
               . ']';
    }));

    wait_refreshes($t, $n);

    my $st = $t->status;

    is($st->{refreshes}, $n, "symbols growing: every one of $n steps landed");
    is(failed($t), 0, 'symbols growing: no refresh failed');
    is($st->{symbols}, 5000, 'symbols growing: 5,000 symbols at the end');
    is($st->{records}, 5000, 'symbols growing: one record each');

    my %p = map { $_->{symbol} => $_->{price} }
            @{ $t->get_json('/api/StockPrice') // [] };
    is($p{S5000}, 100 + $n, 'symbols growing: the last symbol, from the '
       . 'last step');

    $t->done;
}

# 3. symbols added one by one: refresh k has symbols 1..k, history=5

{
    my $N = 120;
    my $zone = zone_bytes($N, 5);

    my ($t, $up) = start(zone => $zone, history => 5, interval => '5ms',
                         setup => feed($N, sub {
        my ($k) = @_;
        return '[' . join(',', map { record($_, $k) } syms(1 .. $k)) . ']';
    }));

    wait_refreshes($t, $N);

    my $st = $t->status;

    is($st->{refreshes}, $N, "one by one: $N refreshes");
    is(failed($t), 0, 'one by one: no refresh failed');
    is($st->{symbols}, $N, "one by one: $N symbols");

    # symbol j came with refresh j and was in every one after it

    my @bad;
    my $records = 0;

    for my $j (1 .. $N) {
        my ($s) = syms($j);
        my $n = $N - $j + 1;
        $n = 5 if $n > 5;
        $records += $n;

        my @want = map { $N - $_ } 0 .. $n - 1;
        my @got = map { $_->{price} } @{ history_of($t, $s) };

        push @bad, "$s: @got" unless "@got" eq "@want";
    }

    is(join('; ', @bad), '',
       "one by one: each symbol has its history, newest first");
    is($st->{records}, $records, "one by one: $records records in all");

    $t->done;
}

# 4. sizes alternating: refreshes of 1,000 symbols and of 10 of them in
# turn, history=10; the price of every record is its refresh's number

{
    my $N = 20;
    my $H = 10;
    my $zone = zone_bytes(1000, $H);

    my ($t, $up) = start(zone => $zone, history => $H, interval => '10ms',
                         setup => feed($N, sub {
        my ($k) = @_;
        my @s = $k % 2 ? syms(1 .. 1000) : syms(1 .. 10);
        return '[' . join(',', map { record($_, $k) } @s) . ']';
    }));

    wait_refreshes($t, $N);

    my $st = $t->status;

    is($st->{refreshes}, $N, "sizes alternating: $N refreshes");
    is(failed($t), 0, 'sizes alternating: no refresh failed');
    is($st->{symbols}, 1000, 'sizes alternating: 1,000 symbols');

    my @big = grep { $_ % 2 } reverse 1 .. $N;
    splice @big, $H if @big > $H;
    my @all = (reverse 1 .. $N)[0 .. $H - 1];

    is($st->{records}, 10 * @all + 990 * @big,
       'sizes alternating: records of the frequent and the others');

    my @bad;

    for my $s (syms(1, 5, 10, 11, 12, 250, 500, 777, 999, 1000)) {
        my @got = map { $_->{price} } @{ history_of($t, $s) };
        my @want = $s le 'S0010' ? @all : @big;
        push @bad, "$s: @got" unless "@got" eq "@want";
    }

    is(join('; ', @bad), '',
       'sizes alternating: the 10 frequent symbols have the last 10 '
       . 'refreshes, the others the big ones');

    $t->done;
}

# 5. the longest records: symbols of 32 bytes that JSON escapes to 64,
# value times of 40 bytes, prices of 24 characters; and with gzip=on in a
# zone of the rule at one record more of history, compressed every time

for my $gzip (0, 1) {
    my $H = 3;
    my $zone = zone_bytes(300, $H + $gzip);
    my $n = $gzip ? 'longest records, gzip=on' : 'longest records';
    my $vt = '2024-05-01T10:53:37.1234567890123456789Z';
    my $price = '-1.2345678901234567e-300';

    my @s = map { ('"' x 28) . sprintf('%04d', $_) } 1 .. 300;

    my $json = JSON::PP->new->canonical;
    my $body = '[' . join(',', map {
        '{"symbol":' . $json->encode([$_]) =~ s/^\[|\]$//gr
        . ",\"price\":$price,\"valueDateTime\":\"$vt\"}"
    } @s) . ']';

    my ($t, $up) = start(zone => $zone, history => $H, workers => 1,
                         gzip => $gzip,
                         setup => sub {
        my ($t, $up) = @_;
        $up->control({ auth => 0, mode => 'body',
                       body_file => $t->write_file('body.json', $body) });
    });

    $t->wait_for(sub {
        my $st = $t->status;
        return ($st->{failures} // 0) > 0
               || ($st->{records} // 0) >= 300 * $H
                  && $st->{refreshes} >= $H + 2;
    }, 20);

    my $st = $t->status;

    is(length $s[0], 32, "$n: a symbol of 32 bytes");
    is(length $vt, 40, "$n: a value time of 40 bytes");
    is(length $price, 24, "$n: a price of 24 characters");

    is($st->{records}, 300 * $H, "$n: 900 records");
    ok($st->{refreshes} >= $H, "$n: 3 refreshes or more");
    is(failed($t), 0, "$n: no refresh failed");
    is($st->{skippedRecords}, 0, "$n: none skipped");

    my $h = history_of($t, $s[149]);
    is(scalar @$h, $H, "$n: a symbol has 3 records");
    is($h->[0]{symbol}, $s[149], "$n: the symbol, whole");
    is($h->[0]{valueDateTime}, $vt,
       "$n: the 40-byte value time kept as sent");
    ok(defined $h->[0]{price} && $h->[0]{price} == $price,
       "$n: the price exactly");

    if ($gzip) {
        my $id = $t->get('/api/StockPrice');
        my $gz = $t->get('/api/StockPrice', 'Accept-Encoding' => 'gzip');
        my $plain;

        is($gz->{headers}{'content-encoding'}, 'gzip', "$n: compressed");
        ok(gunzip(\$gz->{content} => \$plain) && $plain eq $id->{content},
           "$n: decompressed, the list");
    }

    $t->done;
}

# 6. the fragmentation bug: history=50, 1,000 symbols in 23m (the bug
# report's zone, below the rule): the old module stopped at 45,000 records,
# "too small" with most of the zone free

{
    my ($t, $up) = start(zone => '23m', history => 50,
                         control => { symbols => [ syms(1 .. 1000) ] });

    ok(23 * 1024 * 1024 < zone_bytes(1000, 50),
       'tighter than the rule: 23m is below the rule');

    $t->wait_for(sub {
        my $st = $t->status;
        return ($st->{failures} // 0) > 0
               || ($st->{records} // 0) >= 50000 && $st->{refreshes} >= 52;
    }, 40);

    my $st = $t->status;

    is($st->{records}, 50000,
       'tighter than the rule: the history fills up, 50,000 records');
    is(failed($t), 0, 'tighter than the rule: no refresh failed');

    $t->done;
}

# 7. a zone far below the rule: 1,000 symbols at history=1 in 128k; the
# 3 symbols stored before are kept, and the error gives the rule's figure
# (with gzip=on, the rule's at one record more of history)

for my $gzip (0, 1) {
    my $needed = zone_bytes(1000, 1 + $gzip);
    my $n = $gzip ? 'too small, gzip=on' : 'too small';

    my ($t, $up) = start(zone => '128k', history => 1, interval => '50ms',
                         gzip => $gzip,
                         control => { symbols => [ syms(1 .. 3) ] });

    ok($t->wait_status('refreshes', 1), "$n: 3 symbols stored first");

    $up->control({ auth => 0, symbols => [ syms(1 .. 1000) ] });

    ok($t->wait_status('failures', 1, 10),
       "$n: the refresh of 1,000 symbols fails");

    my $before = $t->get('/api/StockPrice')->{content};

    ok($t->wait_status('failures', 2, 10), "$n: and fails again");

    my $st = $t->status;
    my $total = $st->{zoneBytesTotal} // 0;

    is($t->get('/api/StockPrice')->{content}, $before,
       "$n: the old data is kept");
    is($st->{symbols}, 3, "$n: 3 symbols kept");

    like($st->{lastError} // '',
         qr/^zone is too small for 1000 symbols, $needed bytes needed\b/,
         "$n: lastError asks for the rule's $needed bytes");
    my ($line) = grep { /too small/ } split /\n/, $t->read_file('error.log');
    like($line // '',
         qr/\[error\][ ].*stockprice[ ]zone[ ]"stocks":[ ]zone[ ]is[ ]too[ ]small
            [ ]for[ ]1000[ ]symbols,[ ]$needed[ ]bytes[ ]needed,
            [ ]keeping[ ]3[ ]symbols$/x,
         "$n: the error line says the same, and what is kept");

    my ($x) = ($st->{lastError} // '') =~ /(\d+) bytes needed/;
    ok(defined $x && $x > $total,
       "$n: the bytes needed (" . ($x // '?')
       . ") exceed the zone ($total)");

    is($st->{zoneBytesNeeded}, zone_bytes(3, 1 + $gzip),
       "$n: zoneBytesNeeded is the rule for the 3 symbols held");

    $t->done;
}

done_testing;
