#!/usr/bin/perl

# What an operator graphs (CONTRACT section 5, issue "Packaged,
# documented"): the status' refresh duration histogram, the upstream's
# response bytes and its answers by status class (2xx, 5xx, none for a
# connection closed without an answer), in the JSON and in Prometheus'
# text format; Debian's promtool accepts the latter ("promtool check
# metrics") in every state: before the first refresh, after good ones,
# after failures, with a zone name that needs escaping.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $PROMTOOL = $ENV{PROMTOOL} // '/usr/bin/promtool';

die "t/metrics.t needs promtool ($PROMTOOL; Debian's package prometheus, "
    . "installed by ./build.sh)\n" unless -x $PROMTOOL;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$up->control({ auth => 0 });

# "stocks": the fake upstream every 100 ms; "never": nothing answers on
# port 1, its zone name needs escaping in a label

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=100ms timeout=1s;

    stockprice_poll http://127.0.0.1:1/prices zone=odd"zone\\name:64k
                    interval=1h timeout=1s;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
        location = /status/odd { stockprice_status odd"zone\\name; }
    }
}
EOF

$t->run;

# promtool check metrics on an answer: (passes, what it said)

sub promtool {
    my ($text) = @_;

    my $f = $t->write_file('metrics.txt', $text);
    my $out = `$PROMTOOL check metrics < $f 2>&1`;

    return ($? == 0 && $out !~ /\S/, $out);
}

sub prom {
    my ($url) = @_;

    my $r = $t->get(($url // '/status') . '?format=prometheus');

    return $r->{status} == 200 ? $r->{content} : '';
}

sub sample {
    my ($text, $name, $labels) = @_;

    my ($v) = $text =~ /^\Q$name\E\{\Q$labels\E\} (\S+)$/m;

    return $v;
}

# 1. good refreshes

ok($t->wait_status('refreshes', 5), 'five refreshes');

my $st = $t->status;
my $d = $st->{refreshDuration} // {};
my $b = $d->{buckets} // {};
my @le = qw(0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf);

is_deeply([ sort keys %$b ], [ sort @le ], 'refreshDuration: the 12 buckets');
ok(!grep({ ($b->{ $le[$_] } // 0) < ($b->{ $le[$_ - 1] } // 0) } 1 .. $#le),
   'refreshDuration: buckets cumulative');
is($b->{'+Inf'}, $d->{count}, 'refreshDuration: +Inf is the count');
ok($d->{count} >= $st->{refreshes}
   && $d->{count} <= $st->{refreshes} + $st->{failures} + 2,
   "refreshDuration: a count per refresh ($d->{count}, "
   . "$st->{refreshes} refreshes)");
ok(($d->{sum} // 0) > 0 && $d->{sum} < $d->{count} * 1.0,
   "refreshDuration: a sum in seconds ($d->{sum})");

my $a = $st->{upstreamResponses} // {};

is_deeply([ sort keys %$a ], [ qw(1xx 2xx 3xx 4xx 5xx none) ],
          'upstreamResponses: the six classes');
ok(($a->{'2xx'} // 0) >= $st->{refreshes},
   "upstreamResponses: 2xx, one a refresh ($a->{'2xx'})");
is($a->{'5xx'} + $a->{none}, 0, 'upstreamResponses: no 5xx, none');

ok($st->{upstreamResponseBytes} >= 100 * $st->{refreshes},
   "upstreamResponseBytes: the bodies' bytes ($st->{upstreamResponseBytes})");

my $text = prom();
my ($pass, $out) = promtool($text);

ok($pass, 'promtool check metrics: good refreshes') or diag $out;
like($text, qr/^# TYPE stockprice_refresh_duration_seconds histogram$/m,
     'Prometheus: the histogram');
like($text, qr/^# TYPE stockprice_upstream_responses_total counter$/m,
     'Prometheus: answers, a counter');
like($text, qr/^# TYPE stockprice_upstream_response_bytes_total counter$/m,
     'Prometheus: bytes, a counter');
like($text, qr/^# TYPE stockprice_streams gauge$/m,
     'Prometheus: open streams, a gauge');
ok(defined sample($text, 'stockprice_refresh_duration_seconds_bucket',
                  'zone="stocks",le="+Inf"'), 'Prometheus: the +Inf bucket');
ok((sample($text, 'stockprice_upstream_responses_total',
           'zone="stocks",status="2xx"') // 0) >= 5,
   'Prometheus: the 2xx answers');

# 2. failures: 503s, then connections closed without an answer

my $before = $t->status;

$up->control({ auth => 0, mode => 'status', status => 503 });
ok($t->wait_status('failures', $before->{failures} + 3), 'three 503s');

my $mid = $t->status;

$up->control({ auth => 0, mode => 'close' });
ok($t->wait_status('failures', $mid->{failures} + 3),
   'three closed without an answer');

$up->control({ auth => 0 });
ok($t->wait_status('refreshes', $mid->{refreshes} + 1), 'good again');

$st = $t->status;
$a = $st->{upstreamResponses};

ok($a->{'5xx'} >= 3, "upstreamResponses: the 503s in 5xx ($a->{'5xx'})");
ok($a->{none} >= 3, "upstreamResponses: the closed ones in none ($a->{none})");
ok($st->{refreshDuration}{count}
   >= $before->{refreshDuration}{count} + 6,
   'refreshDuration: failed refreshes counted too');
ok($st->{upstreamResponseBytes} > $before->{upstreamResponseBytes},
   'upstreamResponseBytes: moves on');

($pass, $out) = promtool(prom());
ok($pass, 'promtool check metrics: after failures') or diag $out;

# 3. a zone that never refreshed, its name escaped in labels

my $odd_text = prom('/status/odd');

like($odd_text, qr/^stockprice_refreshes_total\{zone="odd\\"zone\\\\name"\} 0$/m,
     'a zone name with " and \\: escaped in the label');

($pass, $out) = promtool($odd_text);
ok($pass, 'promtool check metrics: a zone never refreshed, a name to '
   . 'escape') or diag $out;

my $odd = $t->get_json('/status/odd');
is($odd->{refreshDuration}{count} // -1, 0, 'never refreshed: count 0')
    if $odd && $odd->{refreshes} == 0 && $odd->{failures} == 0;

$t->done;

done_testing;
