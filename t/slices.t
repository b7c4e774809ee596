#!/usr/bin/perl

# Large bodies, which the module parses and renders in slices between
# turns of the event loop: every record arrives whole wherever the slices
# cut (separators inside strings, nesting, duplicates far apart), a fault
# late in the body keeps the last good data, and a reload or a stop in the
# middle of that work ends cleanly and loses nothing.

use strict;
use warnings;

use Test::More;
use JSON::PP;

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $json = JSON::PP->new->canonical;

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_config(<<'EOF2');
%%MODULE%%
%%BASE%%
worker_processes 2;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:64m
                    interval=200ms timeout=10s max_size=16m;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks; }
        location = /status { stockprice_status stocks; }
    }
}
EOF2

# N records S000001.. with price N.25, then whatever is appended; a symbol
# full of the bytes that cut and nest elements sits in the middle

my $odd = 'X,]}"[{';

sub body {
    my ($n, $tail, $round) = @_;

    my @r = map { sprintf '{"symbol":"S%06d","price":%d.%02d,"nested":'
                          . '{"a":[1,{"b":"],"}]}}', $_, $_, $round }
            1 .. $n;

    splice @r, $n / 2, 0,
           '{"symbol":"X,]}\\"[{","price":7.5,"s":"\\\\","t":"\\\\\\""}';

    return '[' . join(',', @r) . ($tail // '') . ']';
}

sub serve {
    my ($body) = @_;

    $t->write_file('body.json', $body);
    $up->control({ auth => 0, mode => 'body',
                   body_file => $t->dir . '/body.json' });
}

$t->run;

# 20,000 records, some 1.6 MB: many slices of parsing and of rendering

my $N = 20000;

serve(body($N, ',{"symbol":"S000001","price":0.5}', 1));

ok($t->wait_for(sub { ($t->status->{symbols} // 0) == $N + 1 }, 15),
   "$N records and one more stored");

my $list = $t->get_json('/api/StockPrice');
is(scalar @$list, $N + 1, 'the list has them all');
is_deeply([ map { $_->{symbol} } @$list ],
          [ sort map { $_->{symbol} } @$list ], 'sorted by symbol');

# the ids made for them: version 4 UUIDs, no two alike

my %ids = map { $_->{id} => 1 } @$list;
is(scalar keys %ids, $N + 1, 'every record has its own id');
is(scalar(grep { !/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-
                  [0-9a-f]{12}$/x } keys %ids), 0,
   'each a version 4 UUID');

my %price = map { $_->{symbol} => $_->{price} } @$list;
is($price{S000001}, 0.5, 'a duplicate at the end of the body wins');
is($price{S000002}, 2.01, 'the second record');
is($price{sprintf 'S%06d', $N / 2}, $N / 2 + 0.01, 'one in the middle');
is($price{sprintf 'S%06d', $N}, $N + 0.01, 'the last record');
is($price{$odd}, 7.5, 'a symbol of separators and brackets, whole');

my $r = $t->get('/api/StockPrice/X%2C%5D%7D%22%5B%7B');
is($r->{status}, 200, 'that symbol by its own URL');
like($r->{content}, qr/"price":7\.5\b/, 'with its price');

my $st = $t->status;
is($st->{skippedRecords}, 0, 'no record skipped');

# a fault at the very end of a large body: the whole refresh fails, the
# records of the slices before it are not stored (each success makes new
# ids: between two failures the list stays the same bytes)

for my $f ([ 'a trailing comma', body($N, ',', 2) ],
           [ 'a truncated body', substr(body($N, '', 2), 0, -1) ],
           [ 'a "}" closing the array', substr(body($N, '', 2), 0, -1) . '}' ],
           [ 'garbage after the array', body($N, '', 2) . ' x' ])
{
    my ($what, $body) = @$f;

    $st = $t->status;
    serve($body);

    ok($t->wait_status('failures', $st->{failures} + 1, 15),
       "$what: refresh failed");

    my $good = $t->get('/api/StockPrice')->{content};

    ok($t->wait_status('failures', $st->{failures} + 2, 15),
       "$what: failed again");
    is($t->get('/api/StockPrice')->{content}, $good,
       "$what: the last good data served");
    like($t->status->{lastError} // '', qr/not valid JSON/,
         "$what: not valid JSON");

    # a success ends the backoff
    $st = $t->status;
    serve(body($N, '', 1));
    ok($t->wait_status('refreshes', $st->{refreshes} + 1, 15),
       "$what: a good body again");
}

my $kept = $N + 1;

like($t->read_file('error.log'),
     qr/\[error\][ ].*"stocks":[ ]upstream[ ]response[ ]is[ ]not[ ]valid
        [ ]JSON,[ ]keeping[ ]$kept\ symbols/x,
     'one clear error line, the symbols kept');

# bad records in the last slices are skipped, not fatal

$st = $t->status;
serve(body($N, ',{"symbol":"","price":1},{"symbol":"Z","price":"x"}', 3));

ok($t->wait_status('refreshes', $st->{refreshes} + 1, 15),
   'bad records at the end: refreshed');
is($t->status->{skippedRecords} - $st->{skippedRecords}, 2,
   'two records skipped');
like($t->get("/api/StockPrice/" . sprintf('S%06d', $N))->{content},
     qr/"price":${N}\.03\b/, 'the records before them stored');

# a reload and a stop in the middle of the work on a large body: the new
# workers take the refresh duty over, and nginx exits at once

my $BIG = 100000;

serve(body($BIG, '', 4));

ok($t->wait_for(sub { ($t->status->{symbols} // 0) == $BIG + 1 }, 30),
   "$BIG records stored");

for my $pause (0, 0.02, 0.05) {
    my $n = $up->stats->{prices} // 0;

    # the next body served: then reload while it is being worked on

    ok($t->wait_for(sub { ($up->stats->{prices} // 0) > $n }, 10),
       "the next large body served ($pause s before the reload)");
    select undef, undef, undef, $pause;

    $st = $t->status;
    ok($t->reload(1), "reload $pause s after a large body was served");
    ok($t->wait_status('refreshes', $st->{refreshes} + 2, 30),
       'the new workers refresh');
    is($t->status->{symbols}, $BIG + 1, 'nothing lost');
}

{
    my $n = $up->stats->{prices} // 0;

    ok($t->wait_for(sub { ($up->stats->{prices} // 0) > $n }, 10),
       'the next large body served (0.02 s before the quit)');
    select undef, undef, undef, 0.02;

    my $took = $t->stop;
    ok(defined $took && $took < $t->limit(3),
       sprintf('quit during the work on a large body: gone in %.2f s',
               $took // -1));
}

$t->done;

done_testing;
