#!/usr/bin/perl

# A symbol that a reload removes from symbols= is no longer served
# (CONTRACT sections 4 and 6): once the new workers serve, it is gone from
# every answer, its whole history with it, without a refresh and without an
# upstream request; the records of the symbols kept stay byte for byte what
# they were.  A symbol a reload adds comes with the next refresh; a reload
# that drops symbols= altogether removes nothing, and a symbol the upstream
# sends again after its removal starts a new history.

use strict;
use warnings;

use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_file('credentials', $up->credentials);

# reuseport: each worker has its own listening socket and the kernel spreads
# the connections over them, so a loop of requests reaches both workers;
# X-Worker says which one answered

my $template = <<'EOF2';
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=%%INTERVAL%% timeout=2s history=3 %%SYMBOLS%%
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    server {
        listen 127.0.0.1:%%PORT_0%% reuseport;

        add_header X-Worker $pid always;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF2

sub configure {
    my ($interval, $symbols) = @_;

    my $c = $template;
    $c =~ s/%%INTERVAL%%/$interval/;
    $c =~ s/%%SYMBOLS%%/defined $symbols ? "symbols=$symbols" : ''/e;

    $t->write_config($c);
}

my $json = JSON::PP->new;

# the top-level elements of a JSON array, each as the bytes that were sent;
# undef if the text is not an array

sub elements {
    my ($raw) = @_;

    return undef unless defined $raw && $raw =~ /^\s*\[/;

    my (@el, $start);
    my ($depth, $in_str, $esc) = (0, 0, 0);

    for my $i (0 .. length($raw) - 1) {
        my $ch = substr $raw, $i, 1;

        if ($in_str) {
            if ($esc) { $esc = 0 }
            elsif ($ch eq '\\') { $esc = 1 }
            elsif ($ch eq '"') { $in_str = 0 }
            next;
        }

        if ($ch eq '"') {
            $in_str = 1;
            $start //= $i if $depth == 1;

        } elsif ($ch eq '{' || $ch eq '[') {
            $start //= $i if $depth == 1;
            $depth++;

        } elsif ($ch eq '}' || $ch eq ']') {
            $depth--;
            if ($depth == 0) {
                push @el, substr($raw, $start, $i - $start) if defined $start;
                return [ map { s/\s+$//r } @el ];
            }

        } elsif ($ch eq ',' && $depth == 1) {
            push @el, substr($raw, $start, $i - $start) if defined $start;
            undef $start;

        } elsif ($ch !~ /\s/ && $depth == 1) {
            $start //= $i;
        }
    }

    return undef;
}

sub symbol_of { (eval { $json->decode($_[0]) } // {})->{symbol} // '' }

sub symbols_in {
    my ($raw) = @_;
    my $l = eval { $json->decode($raw // '') };
    return ref $l eq 'ARRAY' ? [ map { $_->{symbol} } @$l ] : undef;
}

sub ids_in {
    my ($raw) = @_;
    my $l = eval { $json->decode($raw // '') };
    return ref $l eq 'ARRAY' ? [ map { $_->{id} } @$l ] : [];
}

sub same_list {
    my ($a, $b) = @_;
    return 0 unless ref $a eq 'ARRAY' && ref $b eq 'ARRAY' && @$a == @$b;
    for my $i (0 .. $#$a) { return 0 unless $a->[$i] eq $b->[$i] }
    return 1;
}

# wait until the upstream has heard nothing for a second (bounded), so that
# a refresh scheduled before a reload to a long interval is over

sub quiet {
    my $last = $up->stats;
    my $since = time;

    return $t->wait_for(sub {
        my $s = $up->stats;
        if (($s->{prices} // 0) != ($last->{prices} // 0)
            || ($s->{auth} // 0) != ($last->{auth} // 0))
        {
            ($last, $since) = ($s, time);
            return 0;
        }
        return time - $since >= 1;
    }, 8);
}

# whatever reaches the upstream between $before and a quiet second from
# now

sub upstream_quiet {
    my ($before, $what) = @_;

    ok(!$t->wait_for(sub {
        my $s = $up->stats;
        return $s->{prices} != $before->{prices}
               || $s->{auth} != $before->{auth};
    }, 1, 1), "no upstream request within a second of $what");

    my $s = $up->stats;
    is($s->{prices}, $before->{prices}, "no prices request caused by $what");
    is($s->{auth}, $before->{auth}, "no auth request caused by $what");
}

# one look at the zone: list, histories, status, with no refresh in between

sub snapshot {
    my (@syms) = @_;

    my %s;

    $t->wait_for(sub {
        my $st = $t->status;
        my $l = $t->get('/api/StockPrice');
        %s = (status => $st, list => $l->{content}, etag => $l->{headers}{etag});
        $s{elements} = elements($l->{content});
        $s{history}{$_} = $t->get("/api/StockPrice/$_")->{content}
            for @syms;
        return ($t->status->{refreshes} // -1) == ($st->{refreshes} // -2);
    }, 5);

    return \%s;
}

# 1. symbols=MSFT,AAPL,SAP, refreshing every 200 ms until every symbol has
#    three records; then a long interval, so that nothing refreshes while
#    the removal is looked at

configure('200ms', 'MSFT,AAPL,SAP');
$t->run;

ok($t->wait_status('refreshes', 3), 'three refreshes');
ok($t->wait_for(sub { ($t->status->{records} // 0) >= 9 }, 5),
   'history filled: 9 records');

configure('30s', 'MSFT,AAPL,SAP');
ok($t->reload(1), 'reloaded with interval=30s');
ok(quiet(), 'upstream quiet after the reload to interval=30s');

my $before = snapshot(qw(MSFT AAPL SAP));
my %by_sym = map { symbol_of($_) => $_ } @{ $before->{elements} // [] };

is_deeply(symbols_in($before->{list}), [qw(AAPL MSFT SAP)],
          'before: AAPL, MSFT and SAP served');
is(scalar @{ ids_in($before->{history}{AAPL}) }, 3,
   'before: AAPL has three records');
is($before->{status}{symbols}, 3, 'before: status symbols 3');
is($before->{status}{records}, 9, 'before: status records 9');

my @kept = grep { symbol_of($_) ne 'AAPL' } @{ $before->{elements} // [] };
my %kept_hist = map { $_ => elements($before->{history}{$_}) } qw(MSFT SAP);
my $kept_records = @{ $kept_hist{MSFT} // [] } + @{ $kept_hist{SAP} // [] };
my @aapl_ids = @{ ids_in($before->{history}{AAPL}) };
my $up_before = $up->stats;

# 2. remove AAPL: gone from every answer of the new workers at once

configure('30s', 'MSFT,SAP');
ok($t->reload(1), 'reloaded with symbols=MSFT,SAP');

my %new = map { $_ => 1 } $t->worker_pids;
my (%seen, %bad);
my $rounds = 0;

for my $i (1 .. 60) {
    last if $i > 12 && keys %seen >= 2;
    $rounds++;

    my $l = $t->get('/api/StockPrice');
    my $w = $l->{headers}{'x-worker'} // '?';
    $seen{$w}++;

    push @{ $bad{list} }, "round $i (worker $w): $l->{status} $l->{content}"
        unless $l->{status} == 200
               && same_list(elements($l->{content}), \@kept);

    push @{ $bad{etag} }, "round $i (worker $w): " . ($l->{headers}{etag} // '')
        unless defined $l->{headers}{etag}
               && $l->{headers}{etag} ne ($before->{etag} // '');

    my $lh = $t->http('HEAD', '/api/StockPrice');
    push @{ $bad{head_list} }, "round $i: HEAD $lh->{status} "
        . ($lh->{headers}{'content-length'} // 'none') . ', GET '
        . length($l->{content})
        unless $lh->{status} == 200
               && ($lh->{headers}{'content-length'} // -1)
                  == length $l->{content};

    my $a = $t->get('/api/StockPrice/AAPL');
    my $err = $t->json_decode($a->{content});
    push @{ $bad{aapl} }, "round $i (worker "
        . ($a->{headers}{'x-worker'} // '?') . "): $a->{status} $a->{content}"
        unless $a->{status} == 404 && ref $err eq 'HASH'
               && defined $err->{error} && !ref $err->{error};

    my $ah = $t->http('HEAD', '/api/StockPrice/AAPL');
    push @{ $bad{head_aapl} }, "round $i: HEAD $ah->{status} "
        . ($ah->{headers}{'content-length'} // 'none') . ", GET $a->{status} "
        . length($a->{content})
        unless $ah->{status} == $a->{status}
               && ($ah->{headers}{'content-length'} // -1)
                  == length $a->{content};

    my $f = $t->get('/api/StockPrice?symbols=AAPL,MSFT');
    push @{ $bad{filter} }, "round $i (worker "
        . ($f->{headers}{'x-worker'} // '?') . "): $f->{status} $f->{content}"
        unless $f->{status} == 200
               && same_list(elements($f->{content}), [ $by_sym{MSFT} // '' ]);

    my $fh = $t->http('HEAD', '/api/StockPrice?symbols=AAPL,MSFT');
    push @{ $bad{head_filter} }, "round $i: HEAD $fh->{status} "
        . ($fh->{headers}{'content-length'} // 'none') . ', GET '
        . length($f->{content})
        unless $fh->{status} == 200
               && ($fh->{headers}{'content-length'} // -1)
                  == length $f->{content};

    my $only = $t->get('/api/StockPrice?symbols=AAPL');
    push @{ $bad{filter_only} }, "round $i: $only->{status} $only->{content}"
        unless $only->{status} == 200 && $only->{content} =~ /^\s*\[\s*\]\s*$/;

    for my $s (qw(MSFT SAP)) {
        my $h = $t->get("/api/StockPrice/$s");
        push @{ $bad{"hist_$s"} }, "round $i: $h->{status} $h->{content}"
            unless $h->{status} == 200
                   && same_list(elements($h->{content}), $kept_hist{$s});
    }

    my $st = $t->status;
    push @{ $bad{status} }, "round $i: symbols "
        . ($st->{symbols} // 'none') . ', records ' . ($st->{records} // 'none')
        unless ($st->{symbols} // -1) == 2
               && ($st->{records} // -1) == $kept_records;
}

sub none_bad {
    my ($key, $name) = @_;
    my @b = @{ $bad{$key} // [] };
    ok(!@b, "$name ($rounds rounds)")
        or diag(scalar(@b) . " bad, first: $b[0]");
}

none_bad('list', 'list: only MSFT and SAP, their records byte for byte '
         . 'as before, in the same order');
none_bad('etag', 'list: ETag changed with the data');
none_bad('head_list', 'list: HEAD agrees with GET on Content-Length');
none_bad('aapl', '/api/StockPrice/AAPL: 404 with a JSON error body');
none_bad('head_aapl', '/api/StockPrice/AAPL: HEAD agrees with GET');
none_bad('filter', '?symbols=AAPL,MSFT: only MSFT, as before');
none_bad('head_filter', '?symbols=AAPL,MSFT: HEAD agrees with GET');
none_bad('filter_only', '?symbols=AAPL: an empty list');
none_bad('hist_MSFT', 'MSFT history unchanged, byte for byte');
none_bad('hist_SAP', 'SAP history unchanged, byte for byte');
none_bad('status', "status: symbols 2, records $kept_records "
         . '(all of AAPL\'s records gone)');

is($kept_records, $before->{status}{records} - @aapl_ids,
   'records drop by the count of AAPL\'s records');
is(scalar(grep { $new{$_} } keys %seen), 2,
   'both new workers answered (' . join(', ', map { "$_: $seen{$_}" }
                                       sort keys %seen) . ')');
is($t->status->{refreshes}, $before->{status}{refreshes},
   'no refresh in between');
is($t->status->{authenticated}, JSON::PP::true, 'token kept');

upstream_quiet($up_before, 'the reload removing AAPL');

my $removed = snapshot(qw(MSFT SAP));

# 3. add IBM: MSFT and SAP as they were, IBM only after the next refresh

$up->control({ symbols => [qw(MSFT AAPL SAP IBM)] });
$up_before = $up->stats;

configure('30s', 'MSFT,SAP,IBM');
ok($t->reload(1), 'reloaded with symbols=MSFT,SAP,IBM');

my $added = snapshot(qw(MSFT SAP IBM));

ok(same_list($added->{elements}, $removed->{elements}),
   'adding IBM: the list is as before, byte for byte');
is_deeply(symbols_in($added->{list}), [qw(MSFT SAP)],
          'adding IBM: MSFT and SAP, no IBM before a refresh, no AAPL');
is($t->get('/api/StockPrice/IBM')->{status}, 404,
   'adding IBM: /api/StockPrice/IBM 404 before a refresh');
ok(same_list(elements($added->{history}{$_}),
             elements($removed->{history}{$_})),
   "adding IBM: $_ history unchanged") for qw(MSFT SAP);
is($added->{status}{symbols}, 2, 'adding IBM: status symbols 2');
is($up->stats->{prices}, $up_before->{prices},
   'adding IBM: no prices request caused by the reload');

configure('200ms', 'MSFT,SAP,IBM');
ok($t->reload(1), 'reloaded with interval=200ms');

ok($t->wait_for(sub {
    my $s = symbols_in($t->get('/api/StockPrice')->{content}) // [];
    return grep { $_ eq 'IBM' } @$s;
}, 5), 'IBM served after the next refresh');

is($up->stats->{last_prices}{query}, 'symbols=MSFT,SAP,IBM',
   'the refresh asked for MSFT,SAP,IBM');

my $l = $t->get('/api/StockPrice');
is_deeply(symbols_in($l->{content}), [qw(IBM MSFT SAP)],
          'after the refresh: IBM, MSFT and SAP, still no AAPL');
is($t->status->{symbols}, scalar @{ symbols_in($l->{content}) // [] },
   'status symbols equals the symbols listed');
is($t->get('/api/StockPrice/AAPL')->{status}, 404,
   'after the refresh: /api/StockPrice/AAPL still 404');

# 4. drop symbols= altogether: nothing is removed

configure('30s', 'MSFT,SAP,IBM');
ok($t->reload(1), 'reloaded with interval=30s');
ok(quiet(), 'upstream quiet after the reload to interval=30s');

my $three = snapshot(qw(MSFT SAP IBM));
$up_before = $up->stats;

is_deeply(symbols_in($three->{list}), [qw(IBM MSFT SAP)],
          'before dropping symbols=: IBM, MSFT and SAP');

configure('30s', undef);
ok($t->reload(1), 'reloaded without symbols=');

my $all = snapshot(qw(MSFT SAP IBM));

ok(same_list($all->{elements}, $three->{elements}),
   'without symbols=: the list is as before, byte for byte');
ok(same_list(elements($all->{history}{$_}), elements($three->{history}{$_})),
   "without symbols=: $_ history unchanged") for qw(MSFT SAP IBM);
is($all->{status}{symbols}, 3, 'without symbols=: status symbols 3');
is($all->{status}{records}, $three->{status}{records},
   'without symbols=: status records unchanged');

upstream_quiet($up_before, 'the reload dropping symbols=');

# AAPL comes back from the upstream with a history of its own: none of the
# records it had before its removal

configure('200ms', undef);
ok($t->reload(1), 'reloaded with interval=200ms, without symbols=');

ok($t->wait_for(sub {
    my $s = symbols_in($t->get('/api/StockPrice')->{content}) // [];
    return grep { $_ eq 'AAPL' } @$s;
}, 5), 'AAPL served again after a refresh without symbols=');

is($up->stats->{last_prices}{query}, '', 'no ?symbols= sent upstream');

my %old_aapl = map { $_ => 1 } @aapl_ids;
my @again = @{ ids_in($t->get('/api/StockPrice/AAPL')->{content}) };
ok(@again && !(grep { $old_aapl{$_} } @again),
   'AAPL\'s records from before its removal are gone for good ('
   . scalar(@again) . ' records now)');

$l = $t->get('/api/StockPrice');
is_deeply(symbols_in($l->{content}), [qw(AAPL IBM MSFT SAP)],
          'all four symbols served');
is($t->status->{symbols}, scalar @{ symbols_in($l->{content}) // [] },
   'status symbols equals the symbols listed');

$t->done;

done_testing;
