#!/usr/bin/perl

# docs/openapi.yaml against the real module (CONTRACT section 7, the
# OpenAPI document of sections 4 and 5), and its Swagger UI page.
#
# - "redocly lint" (tools/node_modules, the recommended ruleset of
#   docs/redocly.yaml) finds no error and no warning; skipped only when
#   tools/node_modules is not installed.
# - Real answers of two nginx: demo/nginx.conf as ./build.sh run fills it
#   (own port, error log in the prefix), polling its demo feed with
#   authentication, gzip=on; and one polling a fake upstream, for the states
#   the demo does not reach: before the first refresh, during an event
#   stream, rate limited (429 with Retry-After), recovered.  For each
#   answer: its status is documented for its path and method; its
#   Content-Type is one the document gives, its body validates against that
#   media type's schema (JSON::Validator; event streams: every event is
#   "event: prices", an id that is an ETag, data a StockPriceList, comments
#   are ": heartbeat"); every header documented as required is there, each
#   documented header there validates against its schema and comes once,
#   headers the request's case says must or must not be there (Vary,
#   Content-Encoding, ETag, Last-Modified) are or are not, and no header
#   but HTTP's own framing is undocumented.
# - Both ways: every path, method, status and media type the document
#   gives was answered so here; every answer seen here is documented.
# - The document: OpenAPI 3.1.0, servers "/", the module's version, every
#   example valid against its schema, every object schema closed
#   (additionalProperties false) and requiring every member it names.
# - The demo serves the document at /openapi.yaml (its bytes, a YAML type),
#   /docs -> 301 /docs/, /docs/ is docs/swagger/index.html (no inline
#   script, nothing from another host), /docs/swagger-initializer.js is
#   docs/swagger/swagger-initializer.js (loading /openapi.yaml), and
#   everything the page references is served.

use strict;
use warnings;

use Encode ();
use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use File::Spec;
use File::Temp;
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use JSON::Validator::Schema::Draft201909;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use YAML::XS ();

use lib 't/lib';
use StockTest;
use FakeUpstream;

my $ROOT = $StockTest::ROOT;
my $DOC = "$ROOT/docs/openapi.yaml";
my $TOOLS = "$ROOT/tools/node_modules";
my $REDOCLY = "$TOOLS/.bin/redocly";
my $SWAGGER = "$TOOLS/swagger-ui-dist";

my $json = JSON::PP->new->canonical;

# HTTP's own framing, which nginx adds to every answer: the document needs
# not name these
my %FRAMING = map { $_ => 1 }
    qw(server date content-type content-length connection keep-alive
       transfer-encoding);

###############################################################################

# a module given relative to the repository, as "prove" is run from there:
# nginx would look for it relative to the test's prefix

$ENV{STOCKPRICE_MODULE} = File::Spec->rel2abs($ENV{STOCKPRICE_MODULE})
    if $ENV{STOCKPRICE_MODULE} && $ENV{STOCKPRICE_MODULE} !~ m{^/};

# redocly lint in the background while nginx is tested (it takes a second):
# its JSON report on stdout, its chatter (Node.js notices) into a file

my $lint;
my $lint_log = File::Temp->new(TEMPLATE => 'stockprice-lint-XXXXXX',
                               TMPDIR => 1);

if (-x $REDOCLY) {
    my $pid = open($lint, '-|');
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>&', $lint_log or POSIX::_exit(126);
        $ENV{REDOCLY_TELEMETRY} = 'off';
        $ENV{REDOCLY_SUPPRESS_UPDATE_NOTICE} = 'true';
        exec($REDOCLY, 'lint', $DOC, '--config', "$ROOT/docs/redocly.yaml",
             '--format', 'json')
            or print STDERR "exec $REDOCLY: $!\n";
        POSIX::_exit(127);
    }
}

###############################################################################

# The document: walked here for its paths, responses and headers (their
# $ref followed by pointer() and deref()), and JSON::Validator's for the
# schemas (JSON Schema 2020-12 as OpenAPI 3.1 has it; what the document
# uses of it, draft 2019-09 has too), found by pointer

my $doc_bytes = do {
    open my $fh, '<', $DOC or die "$DOC: $!";
    binmode $fh;
    local $/;
    <$fh>;
};

my $doc = do {
    local $YAML::XS::Boolean = 'JSON::PP';
    YAML::XS::Load($doc_bytes);
};

my $jv = JSON::Validator::Schema::Draft201909->new($doc);
$jv->resolve;

# a node of the document by JSON pointer ("#/components/...")

sub pointer {
    my ($ptr) = @_;

    die "not a local reference: $ptr\n" unless $ptr =~ s{^#/}{};

    my $node = $doc;

    for my $p (split m{/}, $ptr) {
        $p =~ s/~1/\//g;
        $p =~ s/~0/~/g;
        die "no $ptr in the document\n"
            unless ref $node eq 'HASH' && exists $node->{$p};
        $node = $node->{$p};
    }

    return $node;
}

sub deref {
    my ($node) = @_;

    for (1 .. 10) {
        last unless ref $node eq 'HASH' && defined $node->{'$ref'};
        $node = pointer($node->{'$ref'});
    }

    return $node;
}

# a name as a JSON pointer's token

sub token {
    my ($s) = @_;

    $s =~ s/~/~0/g;
    $s =~ s/\//~1/g;

    return $s;
}

# where a documented response is, its $ref followed: a pointer

sub response_at {
    my ($tmpl, $method, $status) = @_;

    my $at = '#/paths/' . token($tmpl) . '/' . lc($method)
             . "/responses/$status";

    for (1 .. 10) {
        my $node = pointer($at);
        last unless ref $node eq 'HASH' && defined $node->{'$ref'};
        $at = $node->{'$ref'};
    }

    return $at;
}

# where the schema of a documented response's media type is

sub schema_at {
    my ($tmpl, $method, $status, $type) = @_;

    return response_at($tmpl, $method, $status) . '/content/' . token($type)
           . '/schema';
}

# JSON::Validator's problems with $data against the schema at a pointer,
# as one string; '' when valid

sub invalid {
    my ($data, $at) = @_;

    my $schema = $jv->get($at =~ s{^#}{}r)
        // die "no schema at $at in the document\n";

    return join '; ', map { "$_" } $jv->validate($data, $schema);
}

# the path template of the document that a URL's path matches

my %template_re;

for my $p (keys %{ $doc->{paths} // {} }) {
    my $re = join '', map { /^\{\w+\}$/ ? '[^/]+' : quotemeta }
                          split /(\{\w+\})/, $p;
    $template_re{$p} = qr/^$re$/;
}

sub template_of {
    my ($url) = @_;

    my ($path) = $url =~ m{^([^?]*)};
    my @m = grep { $path =~ $template_re{$_} } sort keys %template_re;

    return @m == 1 ? $m[0] : undef;
}

# the documented response of (template, method, status), or undef

sub documented {
    my ($tmpl, $method, $status) = @_;

    return undef unless defined $tmpl;

    my $op = $doc->{paths}{$tmpl}{ lc $method } or return undef;
    my $res = $op->{responses}{$status} or return undef;

    return deref($res);
}

# the operations (methods) of a path

sub operations {
    my ($tmpl) = @_;

    return sort grep { /^(get|put|post|delete|options|head|patch|trace)$/ }
                keys %{ $doc->{paths}{$tmpl} };
}

###############################################################################

# 1. the document itself

is($doc->{openapi}, '3.1.0', 'document: OpenAPI 3.1.0');
is_deeply([ map { $_->{url} } @{ $doc->{servers} // [] } ], ['/'],
          'document: servers [{url: /}]');

{
    my $h = "$ROOT/ngx_stockprice_module/ngx_http_stockprice_module.h";
    open my $fh, '<', $h or die "$h: $!";
    my ($v) = join('', <$fh>) =~ /NGX_HTTP_STOCKPRICE_VERSION\s+"([^"]+)"/;
    close $fh;

    is($doc->{info}{version}, $v, "document: the module's version ($v)");
}

# every example of a media type validates against its schema

my %example;

for my $tmpl (sort keys %{ $doc->{paths} }) {
    for my $m (operations($tmpl)) {
        for my $s (sort keys %{ $doc->{paths}{$tmpl}{$m}{responses} }) {
            my $at = response_at($tmpl, $m, $s);
            my $content = pointer($at)->{content} // {};

            for my $type (sort keys %$content) {
                my $mt = $content->{$type};
                my %ex = %{ $mt->{examples} // {} };
                $ex{example} = { value => $mt->{example} }
                    if exists $mt->{example};

                for my $name (sort keys %ex) {
                    next if $example{"$at $type $name"}++;

                    my $value = deref($ex{$name})->{value};
                    my $why = $type eq 'text/event-stream'
                              ? sse_problems(sse_split($value))
                              : invalid($value,
                                        schema_at($tmpl, $m, $s, $type));

                    is($why, '', "document: example $name of \U$m\E $tmpl"
                                 . " $s $type is valid");
                }
            }
        }
    }
}

ok(keys %example >= 8, 'document: ' . keys(%example) . ' examples checked');

# every object schema is closed: a member the module adds must be
# documented

{
    my @open;
    my $walk;

    $walk = sub {
        my ($node, $where) = @_;

        if (ref $node eq 'HASH') {
            push @open, $where
                if ($node->{type} // '') eq 'object'
                   && !(exists $node->{additionalProperties}
                        && !$node->{additionalProperties});
            $walk->($node->{$_}, "$where/$_") for sort keys %$node;

        } elsif (ref $node eq 'ARRAY') {
            $walk->($node->[$_], "$where/$_") for 0 .. $#$node;
        }
    };

    $walk->($doc->{components}{schemas}, '#/components/schemas');

    is(join(' ', @open), '', 'document: every object schema has '
                             . 'additionalProperties: false');
}

# and requires every member it names: the module writes each of them in
# every answer (a member it may leave out would be listed here)

{
    my @loose;
    my $walk;

    $walk = sub {
        my ($node, $where) = @_;

        if (ref $node eq 'HASH') {
            if (ref $node->{properties} eq 'HASH') {
                my %req = map { $_ => 1 } @{ $node->{required} // [] };
                push @loose, map { "$where/properties/$_" }
                             grep { !$req{$_} }
                             sort keys %{ $node->{properties} };
                push @loose, map { "$where/required/$_ (no such member)" }
                             grep { !exists $node->{properties}{$_} }
                             sort keys %req;
            }
            $walk->($node->{$_}, "$where/$_") for sort keys %$node;
        }
    };

    $walk->($doc->{components}{schemas}, '#/components/schemas');

    is(join(' ', @loose), '', 'document: every member of an object schema '
                              . 'is required');
}

###############################################################################

# An event-stream client: a raw HTTP/1.1 request, the answer read as it
# comes (de-chunked), closed by the caller.  A stream holds status, headers
# ({ lowercased name => [values] }), text (the body so far).

sub sse_open {
    my ($port, $url, %h) = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Timeout => 5)
        or die "connect to $port: $!";

    my %head = (Host => 'localhost', Accept => 'text/event-stream', %h);
    my $req = "GET $url HTTP/1.1\r\n"
              . join('', map { "$_: $head{$_}\r\n" } sort keys %head)
              . "\r\n";

    syswrite($sock, $req) == length $req or die "request not sent: $!";
    $sock->blocking(0);

    return { sock => $sock, raw => '', text => '', headers => {},
             url => $url };
}

# read what comes for up to $secs seconds, or until $until->($s) is true

sub sse_pump {
    my ($s, $secs, $until) = @_;

    my $sel = IO::Select->new($s->{sock});
    my $end = time + $secs * $StockTest::SLOW;

    while (!$s->{eof}) {
        last if $until && $until->($s);

        my $left = $end - time;
        last if $left <= 0;
        next unless $sel->can_read($left);

        my $n = sysread $s->{sock}, my $buf, 65536;

        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            $s->{eof} = 1;

        } elsif ($n == 0) {
            $s->{eof} = 1;

        } else {
            $s->{raw} .= $buf;
            sse_parse($s);
        }
    }

    return $s;
}

sub sse_parse {
    my ($s) = @_;

    unless (defined $s->{status}) {
        my $e = index $s->{raw}, "\r\n\r\n";
        return if $e < 0;

        my ($line, @lines) = split /\r\n/, substr($s->{raw}, 0, $e + 4, '');

        ($s->{status}) = $line =~ m{^HTTP/1\.1 (\d{3}) };
        $s->{status} //= 0;

        for (@lines) {
            push @{ $s->{headers}{ lc $1 } }, $2 if /^([^:]+):\s*(.*?)\s*$/;
        }
    }

    my $chunked = join(',', @{ $s->{headers}{'transfer-encoding'} // [] })
                  =~ /chunked/i;

    unless ($chunked) {
        $s->{text} .= $s->{raw};
        $s->{raw} = '';
        return;
    }

    while ($s->{raw} =~ /\A([0-9a-fA-F]+)\r\n/) {
        my ($size, $hl) = (hex $1, length($1) + 2);
        last if length($s->{raw}) < $hl + $size + 2;

        $s->{text} .= substr $s->{raw}, $hl, $size;
        substr($s->{raw}, 0, $hl + $size + 2, '');
    }
}

# the events and comments of a stream's text: [{ event, id, data }
# or { comment }], and what is left unfinished

sub sse_split {
    my ($text) = @_;

    my @items;

    while ($text =~ s/\A(.*?)\n\n//s) {
        my $block = $1;

        if ($block !~ /^[^:]/m) {
            push @items, { comment => $block };
            next;
        }

        my %ev;

        for my $l (split /\n/, $block) {
            my ($f, $v) = $l =~ /^([^:]+): ?(.*)$/ or do {
                $ev{bad} .= "[$l]";
                next;
            };
            $ev{bad} .= "[$f twice]" if exists $ev{$f};
            $ev{$f} = $v;
        }

        push @items, \%ev;
    }

    push @items, { bad => "unfinished: [$text]" } if length $text;

    return @items;
}

# what is wrong with the events and comments of a stream, '' if nothing

sub sse_problems {
    my @items = @_;

    my @why;

    for my $i (0 .. $#items) {
        my $it = $items[$i];

        if (defined $it->{comment}) {
            push @why, "$i: comment [$it->{comment}]"
                unless $it->{comment} eq ': heartbeat';
            next;
        }

        push @why, "$i: $it->{bad}" if $it->{bad};
        push @why, "$i: fields " . join(',', sort keys %$it)
            if join(',', sort grep { $_ ne 'bad' } keys %$it)
               ne 'data,event,id';
        push @why, "$i: event [" . ($it->{event} // '') . ']'
            unless ($it->{event} // '') eq 'prices';

        my $e = invalid($it->{id}, '#/components/schemas/ETag');
        push @why, "$i: id: $e" if $e;

        my $data = eval { JSON::PP->new->decode($it->{data} // '') };
        push @why, "$i: data is not JSON" unless defined $data;

        $e = defined $data
             ? invalid($data, '#/components/schemas/StockPriceList') : '';
        push @why, "$i: data: $e" if $e;
    }

    return join '; ', @why;
}

sub sse_events {
    my ($s) = @_;

    return grep { defined $_->{event} } sse_split($s->{text});
}

# a stream as an answer for check(): its body the events and comments
# received whole (the next may be on its way)

sub sse_answer {
    my ($s) = @_;

    my $e = rindex $s->{text}, "\n\n";

    return { %$s, content => $e < 0 ? '' : substr $s->{text}, 0, $e + 2 };
}

sub sse_close {
    my ($s) = @_;

    close $s->{sock};
}

###############################################################################

# An answer against the document: ($name, $req, $res, %expect) where $req
# is { method, url }, $res { status, headers, content } (HTTP::Tiny's, or a
# stream's: text instead of content), and %expect:
#
#   status    the status expected
#   type      the Content-Type expected (undef: no body)
#   present   headers the document leaves optional that this case has
#   absent    headers this case must not have
#   json      a check of the decoded body (and the answer): a string of
#             what is wrong, or ''; "what" names it
#
# Four assertions: status; documented; Content-Type and body; headers; and
# a fifth for the case's own check, if it has one.

my %seen;

sub values_of {
    my ($res, $name) = @_;

    my $v = $res->{headers}{$name};

    return () unless defined $v;
    return ref $v ? @$v : ($v);
}

sub check {
    my ($name, $req, $res, %x) = @_;

    my $method = uc $req->{method};
    my $tmpl = template_of($req->{url});
    my $status = $res->{status};

    is($status, $x{status}, "$name: $x{status}")
        or diag($res->{content} // $res->{text} // '');

    my $doc_res = documented($tmpl, $method, $status);

    ok($doc_res, "$name: $status of $method " . ($tmpl // $req->{url})
                 . ' is documented');

    $doc_res //= {};

    my ($type) = values_of($res, 'content-type');
    my $content = $res->{content} // $res->{text} // '';
    my %content = %{ $doc_res->{content} // {} };

    # the body

    my @why;
    my $body;

    if ($method eq 'HEAD' || !%content) {
        push @why, 'a body (' . length($content) . ' bytes)'
            if length $content;
        push @why, "not $x{type}: " . ($type // 'none')
            if $method ne 'HEAD' && defined $x{type};

    } elsif (!defined $type || !$content{$type}) {
        push @why, 'Content-Type ' . ($type // 'none') . ' is none of '
                   . join(', ', sort keys %content);

    } else {
        push @why, "Content-Type $type, not $x{type}"
            if ($x{type} // '') ne $type;

        my $bytes = $content;

        if (join(',', values_of($res, 'content-encoding')) eq 'gzip') {
            my $out;
            gunzip(\$bytes => \$out)
                or push @why, "does not gunzip: $GunzipError";
            $bytes = $out // '';
        }

        my $chars = eval {
            Encode::decode('UTF-8', $bytes, Encode::FB_CROAK)
        };

        if (!defined $chars) {
            push @why, 'not UTF-8';

        } elsif ($type eq 'text/event-stream') {
            my $e = sse_problems(sse_split($chars));
            push @why, $e if $e;

        } elsif ($type =~ m{^application/json}) {
            $body = eval { JSON::PP->new->allow_nonref->decode($chars) };

            if (!defined $body) {
                push @why, "not JSON: $chars";

            } else {
                my $e = invalid($body,
                                schema_at($tmpl, $method, $status, $type));
                push @why, "invalid: $e" if $e;
            }

        } else {
            my $e = invalid($chars,
                            schema_at($tmpl, $method, $status, $type));
            push @why, "invalid: $e" if $e;
            $body = $chars;
        }

        $seen{"$tmpl $method $status $type"}++;
    }

    is(join('; ', @why), '', "$name: "
       . ($method eq 'HEAD' || !%content ? 'no body' : "a valid $x{type}"));

    # the headers

    @why = ();

    my $at = defined $tmpl && %$doc_res
             ? response_at($tmpl, $method, $status) : undef;
    my (%doc_h, %h_at);

    for my $h (keys %{ $doc_res->{headers} // {} }) {
        $doc_h{ lc $h } = deref($doc_res->{headers}{$h});
        $h_at{ lc $h } = "$at/headers/" . token($h);

        for (1 .. 10) {
            my $node = pointer($h_at{ lc $h });
            last unless defined $node->{'$ref'};
            $h_at{ lc $h } = $node->{'$ref'};
        }
    }

    for my $h (sort keys %doc_h) {
        my @v = values_of($res, $h);

        if (!@v) {
            push @why, "no $h" if $doc_h{$h}{required};
            next;
        }

        push @why, "$h " . scalar(@v) . ' times' if @v > 1;

        my $schema = deref($doc_h{$h}{schema} // {});
        my $v = $v[0];
        $v += 0 if ($schema->{type} // '') eq 'integer' && $v =~ /^\d+$/;

        my $e = invalid($v, "$h_at{$h}/schema");
        push @why, "$h: $e" if $e;
    }

    for my $h (sort keys %{ $res->{headers} }) {
        push @why, "$h is not documented"
            unless $doc_h{$h} || $FRAMING{$h};
    }

    for my $h (@{ $x{present} // [] }) {
        push @why, "no $h" unless values_of($res, lc $h);
    }

    for my $h (@{ $x{absent} // [] }) {
        push @why, "$h: " . join(', ', values_of($res, lc $h))
            if values_of($res, lc $h);
    }

    is(join('; ', @why), '', "$name: headers as documented"
       . (@{ $x{present} // [] } ? ', with ' . join(', ', @{ $x{present} })
                                 : '')
       . (@{ $x{absent} // [] } ? ', no ' . join(', ', @{ $x{absent} })
                                : ''));

    $seen{"$tmpl $method $status"}++ if defined $tmpl;

    # the case's own

    is($x{json}->($body, $res), '', "$name: $x{what}") if $x{json};

    return $body;
}

###############################################################################

# 2. an nginx of its own on a fake upstream: the states of a zone

my $t = StockTest->new;
my $up = FakeUpstream->start($t);

$t->write_file('credentials', $up->credentials);

# the first prices request answered 1.5 s late (timeout=60s leaves it
# that, under valgrind too): the zone as it is before its first refresh

$up->control({ delay => 1.5 * $StockTest::SLOW });

$t->write_config(<<'EOF');
%%MODULE%%
%%BASE%%
worker_processes 1;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;

    stockprice_poll http://127.0.0.1:%%PORT_1%%/prices zone=stocks:1m
                    interval=200ms timeout=60s history=3
                    auth=http://127.0.0.1:%%PORT_1%%/auth
                    credentials=%%TESTDIR%%/credentials;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/StockPrice { stockprice stocks gzip=on; }
        location = /api/StockPrice.status { stockprice_status stocks; }
    }
}
EOF

$t->run;

my $STATUS = '/api/StockPrice.status';
my $LIST = '/api/StockPrice';

sub req { my ($m, $u) = @_; return { method => $m, url => $u } }

sub get_on {
    my ($x, $method, $url, %h) = @_;

    my $content = delete $h{content};

    return $x->http($method, $url, headers => \%h,
                    defined $content ? (content => $content) : ());
}

sub symbols_of {
    my ($body) = @_;

    return join ',', map { $_->{symbol} } @{ $body // [] };
}

# 2a. before the first refresh

check('first refresh: status', req(GET => $STATUS),
      get_on($t, GET => $STATUS),
      status => 200, type => 'application/json',
      what => 'no refresh yet, no success, one due',
      json => sub {
          my ($b) = @_;
          return 'not this state: ' . $json->encode($b)
              unless $b->{refreshes} == 0 && $b->{failures} == 0
                     && !defined $b->{lastSuccess}
                     && defined $b->{nextRefresh};
          return '';
      });

my $r = get_on($t, GET => $LIST);
my $etag0 = $r->{headers}{etag} // '';

check('first refresh: list', req(GET => $LIST), $r,
      status => 200, type => 'application/json',
      present => ['ETag', 'Last-Modified', 'Vary'],
      absent => ['Content-Encoding'],
      what => '[]',
      json => sub { symbols_of($_[0]) eq '' ? '' : 'not empty' });

check('first refresh: list to a gzip client',
      req(GET => $LIST), get_on($t, GET => $LIST, 'Accept-Encoding' => 'gzip'),
      status => 200, type => 'application/json',
      present => ['ETag', 'Vary'], absent => ['Content-Encoding'],
      what => 'no compressed list yet: the identity []',
      json => sub { symbols_of($_[0]) eq '' ? '' : 'not empty' });

check('first refresh: If-None-Match', req(GET => $LIST),
      get_on($t, GET => $LIST, 'If-None-Match' => $etag0),
      status => 304, present => ['ETag', 'Last-Modified', 'Vary']);

check('first refresh: HEAD', req(HEAD => $LIST), get_on($t, HEAD => $LIST),
      status => 200, present => ['ETag', 'Last-Modified', 'Vary']);

check('first refresh: history', req(GET => "$LIST/MSFT"),
      get_on($t, GET => "$LIST/MSFT"),
      status => 404, type => 'application/json',
      json => sub {
          ($_[0]{error} // '') eq 'unknown symbol "MSFT"'
              ? '' : "error: $_[0]{error}"
      },
      what => 'unknown symbol "MSFT"');

my $s1 = sse_open($t->port(0), "$LIST?symbols=MSFT");
sse_pump($s1, 3, sub { scalar sse_events($_[0]) >= 1 });

check('first refresh: event stream', req(GET => "$LIST?symbols=MSFT"),
      sse_answer($s1),
      status => 200, type => 'text/event-stream',
      absent => ['ETag', 'Last-Modified', 'Vary', 'Content-Encoding'],
      what => 'the first event: data [], id the ETag of now',
      json => sub {
          my @e = sse_events($s1);
          return 'events: ' . scalar(@e) unless @e == 1;
          return "id $e[0]{id}, ETag $etag0" unless $e[0]{id} eq $etag0;
          return "data $e[0]{data}" unless $e[0]{data} eq '[]';
          return '';
      });

ok($t->wait_for(sub { ($t->status($STATUS)->{streams} // 0) >= 1 }, 3),
   'the stream counted in the status');

check('first refresh: status with a stream open', req(GET => $STATUS),
      get_on($t, GET => $STATUS), status => 200, type => 'application/json');

# 2b. refreshed

$up->control({});

ok($t->wait_status('refreshes', 1, 10, $STATUS), 'the first refresh');

sse_pump($s1, 3, sub { scalar sse_events($_[0]) >= 2 });

my @ev = sse_events($s1);

is(sse_problems(sse_split(sse_answer($s1)->{content})), '',
   'event stream: the events since are valid');
ok(@ev >= 2 && $ev[1]{data} =~ /"symbol":"MSFT"/
   && $ev[1]{data} !~ /"symbol":"(?!MSFT")/,
   'event stream: the first refresh\'s event holds MSFT alone')
    or diag($s1->{text});

check('refreshed: status', req(GET => $STATUS), get_on($t, GET => $STATUS),
      status => 200, type => 'application/json',
      what => 'a success, authenticated, lastError null',
      json => sub {
          my ($b) = @_;
          return 'not this state: ' . $json->encode($b)
              unless $b->{refreshes} >= 1 && defined $b->{lastSuccess}
                     && $b->{authenticated} && !defined $b->{lastError}
                     && $b->{authCalls} >= 1;
          return '';
      });

check('refreshed: list', req(GET => $LIST), get_on($t, GET => $LIST),
      status => 200, type => 'application/json',
      present => ['ETag', 'Last-Modified', 'Vary'],
      absent => ['Content-Encoding'],
      what => 'AAPL, MSFT, SAP',
      json => sub { symbols_of($_[0]) eq 'AAPL,MSFT,SAP'
                    ? '' : symbols_of($_[0]) });

# 2c. rate limited: the data stays, the status says until when

my $failures = $t->status($STATUS)->{failures};

$up->control({ mode => 'status', status => 429,
               headers => { 'Retry-After' => 2 * $StockTest::SLOW } });

ok($t->wait_status('failures', $failures + 1, 10, $STATUS),
   'a refresh answered 429');

check('rate limited: status', req(GET => $STATUS),
      get_on($t, GET => $STATUS), status => 200, type => 'application/json',
      what => 'lastError, rateLimitedUntil, a failure streak',
      json => sub {
          my ($b) = @_;
          return 'not this state: ' . $json->encode($b)
              unless ($b->{lastError} // '') =~ /answered 429/
                     && defined $b->{rateLimitedUntil}
                     && $b->{consecutiveFailures} >= 1;
          return '';
      });

# no refresh changes the data meanwhile: the ETags hold still

my $plain = get_on($t, GET => $LIST);
my $gz = get_on($t, GET => $LIST, 'Accept-Encoding' => 'gzip');
my $etag = $plain->{headers}{etag} // '';

check('rate limited: a gzip client with the identity ETag',
      req(GET => $LIST),
      get_on($t, GET => $LIST, 'Accept-Encoding' => 'gzip',
             'If-None-Match' => $etag),
      status => 200, type => 'application/json',
      present => ['ETag', 'Vary', 'Content-Encoding'],
      what => 'the compressed list, its own ETag',
      json => sub {
          my ($b, $res) = @_;
          return "ETag $res->{headers}{etag}"
              unless $res->{headers}{etag} eq $gz->{headers}{etag}
                     && $res->{headers}{etag} eq substr($etag, 0, -1) . '-gz"';
          return '';
      });

my $s2 = sse_open($t->port(0), $LIST, 'Last-Event-ID' => $etag);
sse_pump($s2, 0.5);

check('rate limited: event stream, Last-Event-ID the current data',
      req(GET => $LIST), sse_answer($s2),
      status => 200, type => 'text/event-stream',
      absent => ['ETag', 'Last-Modified', 'Vary'],
      what => 'nothing sent',
      json => sub { length $s2->{text} ? "sent: $s2->{text}" : '' });

sse_close($s2);

my $s3 = sse_open($t->port(0), $LIST, 'Last-Event-ID' => $etag0);
sse_pump($s3, 3, sub { scalar sse_events($_[0]) >= 1 });

check('rate limited: event stream, an older Last-Event-ID',
      req(GET => $LIST), sse_answer($s3),
      status => 200, type => 'text/event-stream',
      absent => ['ETag', 'Last-Modified', 'Vary'],
      what => 'the current list at once, id the ETag',
      json => sub {
          my @e = sse_events($s3);
          return 'events: ' . scalar(@e) unless @e == 1;
          return "id $e[0]{id}" unless $e[0]{id} eq $etag;
          return "data $e[0]{data}"
              unless $e[0]{data} =~ /"AAPL".*"MSFT".*"SAP"/;
          return '';
      });

sse_close($s3);

# 2d. recovered

$up->control({});

my $refreshes = $t->status($STATUS)->{refreshes};

ok($t->wait_status('refreshes', $refreshes + 1, 10, $STATUS),
   'refreshes again once the Retry-After is over');

check('recovered: status', req(GET => $STATUS), get_on($t, GET => $STATUS),
      status => 200, type => 'application/json',
      what => 'the failure streak over, rateLimitedUntil null',
      json => sub {
          my ($b) = @_;
          return 'not this state: ' . $json->encode($b)
              unless $b->{consecutiveFailures} == 0
                     && !defined $b->{rateLimitedUntil}
                     && $b->{failures} >= 1;
          return '';
      });

sse_close($s1);

$t->done;

###############################################################################

# 3. demo/nginx.conf as ./build.sh run fills it in, on a port of its own

my $d = StockTest->new;
my $dir = $d->dir;
my $port = $d->port(0);

my $module = $ENV{STOCKPRICE_MODULE}
             || "$ROOT/build/ngx_http_stockprice_module.so";

my $conf = do {
    open my $fh, '<', "$ROOT/demo/nginx.conf" or die "demo/nginx.conf: $!";
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
my $logs = $conf =~ s{^error_log\s+stderr\s+\w+;}
                     {error_log $dir/error.log info;}gm;

ok($ports >= 3 && $logs == 1 && $conf !~ /%%\w+%%/,
   'demo/nginx.conf made into a test configuration (port, error log)')
    or diag("127.0.0.1:8080 replaced $ports times, error_log stderr $logs");

$d->write_config($conf);

my ($rc, $out) = $d->test_config;
is($rc, 0, 'demo: nginx -t accepts it') or diag($out);

$d->run;

ok($d->wait_status('refreshes', 1, 10, $STATUS), 'demo: the first refresh');

# the list and its validators of one generation: a refresh (every 10 s)
# may fall between two requests, the pair is taken again then

sub same_generation {
    my ($x, $url, %h) = @_;

    my ($g, $h);

    for (1 .. 3) {
        $g = get_on($x, GET => $url, %h);
        $h = get_on($x, HEAD => $url, %h);
        last if ($g->{headers}{etag} // '') eq ($h->{headers}{etag} // '');
    }

    return ($g, $h);
}

# a conditional request with the ETag of now: asked again if a refresh
# came in between (a 200 of another ETag)

sub conditional {
    my ($x, $method, $url, %h) = @_;

    my $r;

    for (1 .. 3) {
        my $etag = get_on($x, HEAD => $url, %h)->{headers}{etag} // '';
        $r = get_on($x, $method => $url, %h, 'If-None-Match' => $etag);
        last if $r->{status} != 200
                || ($r->{headers}{etag} // '') eq $etag;
    }

    return $r;
}

my ($list, $head) = same_generation($d, $LIST);
my ($glist, $ghead) = same_generation($d, $LIST, 'Accept-Encoding' => 'gzip');
my ($hist, $hhead) = same_generation($d, "$LIST/MSFT");

my $GZETAG = $glist->{headers}{etag} // '';

sub length_is {
    my ($get) = @_;

    return sub {
        my (undef, $res) = @_;
        my $n = $res->{headers}{'content-length'} // 'none';
        return $n eq length($get->{content})
               ? '' : "Content-Length $n, GET sent " . length $get->{content};
    };
}

sub error_is {
    my ($want) = @_;

    return sub {
        my ($b) = @_;
        my $got = ref $b eq 'HASH' ? $b->{error} // '' : '';
        return $got eq $want ? '' : "error [$got]";
    };
}

check('demo: list', req(GET => $LIST), $list,
      status => 200, type => 'application/json',
      present => ['ETag', 'Last-Modified', 'Vary'],
      absent => ['Content-Encoding'],
      what => 'AAPL, MSFT, SAP, sorted',
      json => sub { symbols_of($_[0]) eq 'AAPL,MSFT,SAP'
                    ? '' : symbols_of($_[0]) });

check('demo: list to a gzip client', req(GET => $LIST), $glist,
      status => 200, type => 'application/json',
      present => ['ETag', 'Last-Modified', 'Vary', 'Content-Encoding'],
      what => 'compressed, an ETag of its own',
      json => sub {
          symbols_of($_[0]) ne 'AAPL,MSFT,SAP' ? symbols_of($_[0])
          : $GZETAG !~ /-gz"$/ ? "ETag $GZETAG" : ''
      });

check('demo: ?symbols=MSFT,SAP,XX', req(GET => "$LIST?symbols=MSFT,SAP,XX"),
      get_on($d, GET => "$LIST?symbols=MSFT,SAP,XX",
             'Accept-Encoding' => 'gzip'),
      status => 200, type => 'application/json',
      present => ['ETag', 'Last-Modified'],
      absent => ['Vary', 'Content-Encoding'],
      what => 'MSFT, SAP',
      json => sub { symbols_of($_[0]) eq 'MSFT,SAP' ? '' : symbols_of($_[0]) });

check('demo: ?symbols= (none)', req(GET => "$LIST?symbols="),
      get_on($d, GET => "$LIST?symbols="),
      status => 200, type => 'application/json',
      present => ['ETag', 'Last-Modified'], absent => ['Vary'],
      what => '[]',
      json => sub { symbols_of($_[0]) eq '' ? '' : symbols_of($_[0]) });

check('demo: If-None-Match', req(GET => $LIST), conditional($d, GET => $LIST),
      status => 304, present => ['ETag', 'Last-Modified', 'Vary'],
      absent => ['Content-Encoding']);

check('demo: If-None-Match, gzip', req(GET => $LIST),
      conditional($d, GET => $LIST, 'Accept-Encoding' => 'gzip'),
      status => 304, present => ['ETag', 'Last-Modified', 'Vary'],
      absent => ['Content-Encoding']);

check('demo: HEAD', req(HEAD => $LIST), $head,
      status => 200, present => ['ETag', 'Last-Modified', 'Vary'],
      absent => ['Content-Encoding'],
      what => 'the Content-Length of GET', json => length_is($list));

check('demo: HEAD, gzip', req(HEAD => $LIST), $ghead,
      status => 200,
      present => ['ETag', 'Last-Modified', 'Vary', 'Content-Encoding'],
      what => 'the compressed Content-Length', json => length_is($glist));

check('demo: HEAD, If-None-Match', req(HEAD => $LIST),
      conditional($d, HEAD => $LIST),
      status => 304, present => ['ETag', 'Vary']);

check('demo: HEAD, Accept: text/event-stream', req(HEAD => $LIST),
      get_on($d, HEAD => $LIST, Accept => 'text/event-stream'),
      status => 200, present => ['ETag', 'Last-Modified', 'Vary'],
      what => 'the headers of the JSON list',
      json => sub {
          my (undef, $res) = @_;
          ($res->{headers}{'content-type'} // '') eq 'application/json'
              ? '' : "Content-Type $res->{headers}{'content-type'}"
      });

my $s4 = sse_open($port, "$LIST?symbols=MSFT,SAP",
                  'Accept-Encoding' => 'gzip');
sse_pump($s4, 3, sub { scalar sse_events($_[0]) >= 1 });
sse_close($s4);

check('demo: event stream', req(GET => "$LIST?symbols=MSFT,SAP"),
      sse_answer($s4),
      status => 200, type => 'text/event-stream',
      absent => ['ETag', 'Last-Modified', 'Vary', 'Content-Encoding'],
      what => 'the first event: MSFT and SAP',
      json => sub {
          my @e = sse_events($s4);
          return 'no event' unless @e;
          return "data $e[0]{data}"
              unless $e[0]{data}
                     =~ /^\[\{.*"symbol":"MSFT".*\},\{.*"symbol":"SAP".*\}\]$/;
          return '';
      });

check('demo: history', req(GET => "$LIST/MSFT"), $hist,
      status => 200, type => 'application/json',
      present => ['ETag', 'Last-Modified'], absent => ['Vary'],
      what => 'MSFT only, newest first',
      json => sub {
          my @r = @{ $_[0] // [] };
          return 'not MSFT' if grep { $_->{symbol} ne 'MSFT' } @r;
          return 'not newest first'
              if grep { $r[$_ - 1]{measurementTimeStamp}
                        le $r[$_]{measurementTimeStamp} } 1 .. $#r;
          return '';
      });

check('demo: history, If-None-Match', req(GET => "$LIST/MSFT"),
      conditional($d, GET => "$LIST/MSFT"),
      status => 304, present => ['ETag', 'Last-Modified']);

check('demo: history, Accept: text/event-stream', req(GET => "$LIST/MSFT"),
      get_on($d, GET => "$LIST/MSFT", Accept => 'text/event-stream'),
      status => 200, type => 'application/json',
      present => ['ETag', 'Last-Modified']);

check('demo: HEAD history', req(HEAD => "$LIST/MSFT"), $hhead,
      status => 200, present => ['ETag', 'Last-Modified'],
      what => 'the Content-Length of GET', json => length_is($hist));

check('demo: HEAD history, If-None-Match', req(HEAD => "$LIST/MSFT"),
      conditional($d, HEAD => "$LIST/MSFT"),
      status => 304, present => ['ETag', 'Last-Modified']);

check('demo: unknown symbol', req(GET => "$LIST/NOPE"),
      get_on($d, GET => "$LIST/NOPE"),
      status => 404, type => 'application/json',
      what => 'unknown symbol "NOPE"',
      json => error_is('unknown symbol "NOPE"'));

check('demo: a symbol that is not UTF-8', req(GET => "$LIST/%FF%FE"),
      get_on($d, GET => "$LIST/%FF%FE"),
      status => 404, type => 'application/json',
      what => 'the bytes as U+FFFD',
      json => error_is("unknown symbol \"\x{FFFD}\x{FFFD}\""));

check('demo: HEAD unknown symbol', req(HEAD => "$LIST/NOPE"),
      get_on($d, HEAD => "$LIST/NOPE"), status => 404);

check('demo: status', req(GET => $STATUS), get_on($d, GET => $STATUS),
      status => 200, type => 'application/json',
      what => 'zone "stocks", authenticated',
      json => sub {
          my ($b) = @_;
          ($b->{zone} // '') eq 'stocks' && $b->{authenticated}
              ? '' : $json->encode($b)
      });

my $PROM = 'text/plain; version=0.0.4; charset=utf-8';

check('demo: status, Prometheus', req(GET => "$STATUS?format=prometheus"),
      get_on($d, GET => "$STATUS?format=prometheus"),
      status => 200, type => $PROM,
      what => 'stockprice_ metrics of zone "stocks"',
      json => sub {
          my ($text) = @_;
          my @samples = grep { !/^#/ } split /\n/, $text // '';
          return 'no samples' unless @samples >= 20;
          my @bad = grep { !/^stockprice_\w+\{zone="stocks"[,}]/ } @samples;
          return @bad ? "samples: @bad" : '';
      });

check('demo: HEAD status', req(HEAD => $STATUS), get_on($d, HEAD => $STATUS),
      status => 200);

check('demo: HEAD status, Prometheus', req(HEAD => "$STATUS?format=prometheus"),
      get_on($d, HEAD => "$STATUS?format=prometheus"), status => 200,
      what => 'the Prometheus type',
      json => sub {
          my (undef, $res) = @_;
          ($res->{headers}{'content-type'} // '') eq $PROM
              ? '' : "Content-Type $res->{headers}{'content-type'}"
      });

for my $url ($LIST, "$LIST/MSFT", $STATUS) {
    for my $m (qw(POST PUT PATCH DELETE)) {
        check("demo: $m $url", req($m => $url),
              get_on($d, $m => $url, 'Content-Type' => 'application/json',
                     content => '{"symbol":"MSFT","price":1}'),
              status => 405, type => 'application/json',
              what => 'method not allowed',
              json => error_is('method not allowed'));
    }
}

###############################################################################

# 4. every documented answer was seen here, and in every media type

for my $tmpl (sort keys %{ $doc->{paths} }) {
    for my $m (operations($tmpl)) {
        my $rs = $doc->{paths}{$tmpl}{$m}{responses} // {};

        for my $s (sort keys %$rs) {
            my $key = "$tmpl \U$m\E $s";

            ok($seen{$key}, "answered as documented: $key");

            for my $type (sort keys %{ deref($rs->{$s})->{content} // {} }) {
                ok($seen{"$key $type"}, "answered as documented: $key $type");
            }
        }
    }
}

###############################################################################

# 5. the document and Swagger UI as the demo serves them

sub file {
    my ($path) = @_;

    open my $fh, '<', $path or return undef;
    binmode $fh;
    local $/;
    my $c = <$fh>;
    close $fh;

    return $c;
}

$r = $d->get('/openapi.yaml');

is($r->{status}, 200, 'demo: /openapi.yaml is served');
ok($r->{content} eq $doc_bytes, 'demo: /openapi.yaml is docs/openapi.yaml');
like($r->{headers}{'content-type'} // '', qr{^application/yaml\b},
     'demo: /openapi.yaml is application/yaml');

$r = HTTP::Tiny->new(max_redirect => 0, timeout => 5)
     ->get("http://127.0.0.1:$port/docs");

is($r->{status}, 301, 'demo: /docs is a redirect');
like($r->{headers}{location} // '', qr{^(?:http://[^/]+)?/docs/$},
     'demo: to /docs/');

my $index = file("$ROOT/docs/swagger/index.html") // '';
my $init = file("$ROOT/docs/swagger/swagger-initializer.js") // '';

$r = $d->get('/docs/');

is($r->{status}, 200, 'demo: /docs/ is served');
ok(length $index && $r->{content} eq $index,
   'demo: /docs/ is docs/swagger/index.html');
like($r->{headers}{'content-type'} // '', qr{^text/html\b},
     'demo: /docs/ is text/html');

$r = $d->get('/docs/swagger-initializer.js');

is($r->{status}, 200, 'demo: /docs/swagger-initializer.js is served');
ok(length $init && $r->{content} eq $init,
   'demo: /docs/swagger-initializer.js is docs/swagger/swagger-initializer.js');

# the page: scripts from files only, every reference relative and served

my @scripts = $index =~ /<script\b([^>]*)>(.*?)<\/script\s*>/gis;
my @inline;

while (my ($attrs, $body) = splice @scripts, 0, 2) {
    push @inline, "<script$attrs>$body"
        if $body =~ /\S/ || $attrs !~ /\bsrc=/i;
}

is("@inline", '', 'index.html: no inline script');
unlike($index, qr/\son[a-z]+\s*=/i, 'index.html: no inline event handler');

my @refs = $index =~ /\b(?:src|href)="([^"]+)"/gi;
my @away = grep { m{^(?:[a-z][a-z0-9+.-]*:|//)}i } @refs;

is("@away", '', 'index.html: nothing from another host');

my %need = map { $_ => 1 } qw(swagger-ui.css swagger-ui-bundle.js
                             swagger-ui-standalone-preset.js
                             favicon-32x32.png swagger-initializer.js);
my %have = map { $_ => 1 } @refs;

is(join(' ', grep { !$have{$_} } sort keys %need), '',
   'index.html: refers to swagger-ui.css, swagger-ui-bundle.js, '
   . 'swagger-ui-standalone-preset.js, favicon-32x32.png, '
   . 'swagger-initializer.js');

like($init, qr/\burl:\s*'\/openapi\.yaml'/, 'initializer: loads /openapi.yaml');
like($init, qr/\bvalidatorUrl:\s*null\b/,
     'initializer: no validator badge from validator.swagger.io');
like($init, qr/\btryItOutEnabled:\s*true\b/, 'initializer: try it out');
unlike($init, qr{(?:https?:)?//[a-z0-9]}i,
       'initializer: nothing from another host');

SKIP: {
    skip "$SWAGGER is missing (./build.sh installs the tools of "
         . 'tools/package.json with npm ci)',
         1 + grep { !m{^(?:/|[a-z][a-z0-9+.-]*:)}i } @refs
        unless -f "$SWAGGER/package.json";

    my $v = $json->decode(file("$SWAGGER/package.json"))->{version};
    is($v, '5.35.0', 'swagger-ui-dist 5.35.0');

    for my $ref (grep { !m{^(?:/|[a-z][a-z0-9+.-]*:)}i } @refs) {
        $r = $d->get("/docs/$ref");
        is($r->{status}, 200, "demo: /docs/$ref is served");
    }
}

$d->done;

###############################################################################

# 6. redocly lint's verdict

SKIP: {
    skip "$REDOCLY is missing (./build.sh installs the tools of "
         . 'tools/package.json with npm ci)', 2
        unless $lint;

    my $report = do { local $/; <$lint> } // '';
    close $lint;
    my $code = $? >> 8;

    my $totals = eval { $json->decode($report)->{totals} } // {};

    my $said = do { local (@ARGV, $/) = ("$lint_log"); <> } // '';

    is($code, 0, 'redocly lint docs/openapi.yaml passes')
        or diag("$report\n$said");
    is(($totals->{errors} // -1) + ($totals->{warnings} // -1), 0,
       'redocly lint: no error, no warning')
        or diag("$report\n$said");
}

done_testing;
