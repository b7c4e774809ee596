package FakeUpstream;

# A fake upstream API (CONTRACT section 3) for the integration tests: a
# forked, single-process HTTP/1.1 server on 127.0.0.1 that serves its
# connections concurrently (one IO::Select event loop, non-blocking
# sockets): a delayed answer is a timer of its request and holds back no
# other connection.
#
#   POST /auth    {"username","password"} -> {"token":"tok-N","expiresIn":E}
#   GET  /prices  -> a JSON array of records, prices changing per request
#   GET  /prices?symbol=X  -> one record object {"symbol":"X","price":P,
#             "valueDateTime":...}, the element X of the array answer (any
#             X is served, configured in "symbols" or not)
#
# ?symbols=A,B (each symbol URL-encoded, literal commas) filters the array
# answer; symbol= (singular) asks for one.  Either way the symbols asked
# for, decoded, go to the request's record as "asked" (no "asked" when the
# query names none; symbol= wins when both are there).
#
# Robust against whatever a client sends: a malformed request is dropped,
# a request not read in full within 5 s is dropped, and the server goes
# on with its other connections.  One connection, one request, "Connection:
# close", unless the control says "keepalive".
#
# Stats: auth and prices (counts of requests), delayed (requests being or
# having been delayed), status (count per status answered), last_prices,
# issued (every token issued, oldest first), connections (TCP connections
# accepted), in_flight (prices requests in progress now) and peak (the
# most prices requests in progress at once; a prices request is in
# progress from the moment it is read in full until its answer is written
# in full or its connection closed, delay included), by_symbol (count of
# symbol= requests per symbol), and requests: the last 50 requests, each
# with line, method, path, query, headers (names lowercased), body, conn
# (the serial number of its connection, from 1), asked (see above),
# status, for an auth request answered with a token, that token, and for
# a symbol= request answered with its record, price (the price sent).
#
# Options of start():
#   port      the port (default $t->port(1))
#   name      for several instances in one test: files upstream-NAME.control
#             and upstream-NAME.stats instead of upstream.control and
#             upstream.stats, and tokens "tok-NAME-N-..." (default: none)
#   user, password  the credentials accepted (default alice, pa"ss:word)
#   users     instead: a list of [user, password] pairs, any of them
#             accepted; credentials($i) gives the i-th (default the first)
#   oauth     1: POST /auth speaks OAuth2 client credentials (RFC 6749
#             4.4) instead of the JSON login: a form body
#             grant_type=client_credentials[&scope=...] and HTTP Basic of
#             the form-urlencoded id and secret (a users pair); answers
#             {"access_token","token_type","expires_in"}; the scope asked
#             for goes to the request's record as "scope"
#
# The test steers it at run time through a control file (JSON, read on
# every request, when it has been read in full) and reads its counters
# from a stats file (JSON, written after every request, before its answer
# is sent; in_flight and connections may lag by one turn of the loop):
#
#   mode      "normal" | "status" | "body" | "close" | "401"
#   status    the status for mode "status"
#   body      the literal body for mode "body" (status 200)
#   body_file for mode "body": a file whose bytes are the body (for bodies
#             of megabytes, that the control file would be slow to carry)
#   delay     seconds to wait before answering a prices request (a timer
#             of that request: the others go on meanwhile)
#   auth_delay  the same for auth requests
#   symbols   the symbols served (default MSFT, AAPL, SAP)
#   records   extra literal records (Perl structures) appended to array
#             answers
#   filter    0: ignore ?symbols= and symbol=, serve the array of every
#             symbol (default 1)
#   single_template  for symbol= answers: a literal body in which
#             "{{symbol}}" (JSON-escaped, without quotes) and "{{price}}"
#             are replaced, for provider shapes without a symbol field,
#             e.g. '{"c":{{price}},"t":1704067200}'
#   fail_symbols  { SYMBOL => STATUS, ... }: a request asking for SYMBOL
#             (symbol=, or a ?symbols= list holding it) answers STATUS
#             with {"error":"failing symbol SYMBOL"}
#   redirect  a URL: every prices request answers 302 with that Location
#   chunked   1: send prices bodies chunked (no Content-Length)
#   endless   1: a prices body that never ends: "[" and then records,
#             chunked, until the client hangs up (at most 5 s); the count
#             of bytes sent goes to stats "endless_bytes", the seconds
#             taken to "endless_secs"; the connection is closed after
#   ids       1: give every record an id (a fixed UUID per symbol)
#   reject    1: forget all tokens, answer 401 to every prices request
#             (mode "401" is the same)
#   forget    a number: when it differs from the one seen before, forget
#             every token issued so far, once (the next prices request with
#             an old token gets 401, a fresh token works again)
#   expires   expiresIn of issued tokens, enforced (default 3600; 0: left
#             out, the token never expires)
#   token_type  with oauth: the token_type answered (default "Bearer")
#   headers   extra response headers of prices answers, { name => value }
#   etag, last_modified  validators of the prices (RFC 9110 8.8): sent
#             with every 200 prices answer as ETag and Last-Modified; a
#             prices request whose If-None-Match holds the etag, or that
#             has no If-None-Match and an If-Modified-Since equal to
#             last_modified, is answered 304 without a body (counted in
#             stats "not_modified")
#   auth      0: prices requests need no token (default 1)
#   keepalive 1: HTTP/1.1 persistent connections: the answer says
#             "Connection: keep-alive" and further requests are read on
#             the same connection, until the client sends "Connection:
#             close" (or speaks HTTP/1.0 without keep-alive) or the
#             connection idles 10 s (default 0: "Connection: close", one
#             request per connection)
#
# A prices request is answered, first match wins: mode "close" (no answer),
# redirect, reject or mode "401", a missing or bad token (unless "auth" is
# 0), fail_symbols, mode "status", 304 (etag, last_modified), mode "body",
# the prices.

use strict;
use warnings;

use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep);

# texts in UTF-8: control, stats and bodies
my $json = JSON::PP->new->canonical->utf8;

# seconds to read a request in full, to wait for the next on a persistent
# connection, to stream an endless body
my $REQUEST_LIMIT = 5;
my $IDLE_LIMIT = 10;
my $ENDLESS_LIMIT = 5;


sub start {
    my ($class, $t, %opts) = @_;

    my $port = $opts{port} // $t->port(1);
    my $dir = $t->dir;
    my $file = defined $opts{name} ? "upstream-$opts{name}" : 'upstream';
    my $self = bless {
        t        => $t,
        port     => $port,
        name     => $opts{name},
        oauth    => $opts{oauth},
        control  => "$dir/$file.control",
        stats    => "$dir/$file.stats",
        users    => $opts{users}
                    // [[ $opts{user} // 'alice',
                          $opts{password} // 'pa"ss:word' ]],
    }, $class;

    $self->control({});
    $self->write_stats({ auth => 0, prices => 0, requests => [],
                         issued => [], connections => 0, in_flight => 0,
                         peak => 0, by_symbol => {} });

    my $listen = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                       LocalPort => $port, ReuseAddr => 1)
        or die "fake upstream cannot listen on $port: $!";

    $t->run_daemon(sub { $self->serve($listen) });
    close $listen;

    return $self;
}


sub port { $_[0]{port} }

sub url { 'http://127.0.0.1:' . $_[0]{port} . ($_[1] // '') }


sub credentials {
    my ($self, $i) = @_;

    my $u = $self->{users}[$i // 0] or die "no credentials $i";

    return "$u->[0]:$u->[1]\n";
}


sub control {
    my ($self, $c) = @_;

    open my $fh, '>', "$self->{control}.tmp" or die $!;
    print $fh $json->encode($c);
    close $fh;
    rename "$self->{control}.tmp", $self->{control};
}


sub stats {
    my ($self) = @_;

    open my $fh, '<', $self->{stats} or return {};
    local $/;
    my $s = eval { $json->decode(<$fh>) } // {};
    close $fh;

    return $s;
}


sub write_stats {
    my ($self, $s) = @_;

    open my $fh, '>', "$self->{stats}.tmp" or die $!;
    print $fh $json->encode($s);
    close $fh;
    rename "$self->{stats}.tmp", $self->{stats};
}


sub read_control {
    my ($self) = @_;

    open my $fh, '<', $self->{control} or return {};
    local $/;
    my $c = eval { $json->decode(<$fh>) } // {};
    close $fh;

    return $c;
}


###############################################################################

# The event loop.  A connection ($c) is in one of these states:
#
#   read     waiting for (the rest of) a request; deadline: drop it then
#   delay    a request read, its answer due at $c->{wake}
#   write    an answer in $c->{wbuf} from $c->{woff} on, being sent
#   endless  the same, refilled with records until $c->{end}

sub serve {
    my ($self, $listen) = @_;

    my $st = {
        price     => {},
        tokens    => {},
        n         => 0,
        forgotten => 0,
        serial    => 0,
        conns     => {},
        dirty     => 0,
        stats     => { auth => 0, prices => 0, delayed => 0,
                       requests => [], issued => [], connections => 0,
                       in_flight => 0, peak => 0, by_symbol => {} },
    };

    $SIG{PIPE} = 'IGNORE';

    $listen->blocking(0);

    # until killed; a bad connection never ends the loop
    while (1) {
        my $conns = $st->{conns};
        my $now = Time::HiRes::time();
        my $wake = $now + 1;

        my $rs = IO::Select->new($listen);
        my $ws = IO::Select->new;

        for my $c (values %$conns) {
            $rs->add($c->{sock}) if $c->{state} eq 'read' && !$c->{eof};
            $ws->add($c->{sock}) if $c->{state} eq 'write'
                                    || $c->{state} eq 'endless';
            for my $at ($c->{deadline}, $c->{wake}, $c->{end}) {
                $wake = $at if defined $at && $at < $wake;
            }
        }

        my $timeout = $wake - $now;
        $timeout = 0 if $timeout < 0;

        my ($r, $w) = IO::Select->select($rs, $ws, undef, $timeout);

        for my $sock (@{ $r // [] }) {
            if ($sock == $listen) {
                $self->accept_all($st, $listen);
                next;
            }

            my $c = conn_of($st, $sock) or next;
            $self->guard($st, $c, sub { $self->conn_read($st, $c) });
        }

        for my $sock (@{ $w // [] }) {
            my $c = conn_of($st, $sock) or next;
            $self->guard($st, $c, sub { $self->conn_write($st, $c) });
        }

        # timers: answers due, deadlines passed

        $now = Time::HiRes::time();

        for my $c (values %$conns) {
            next unless $conns->{ $c->{fd} } && $conns->{ $c->{fd} } == $c;

            if ($c->{state} eq 'delay' && $c->{wake} <= $now) {
                delete $c->{wake};
                $self->guard($st, $c, sub { $self->conn_answer($st, $c) });

            } elsif ($c->{state} eq 'read' && defined $c->{deadline}
                     && $c->{deadline} <= $now)
            {
                $self->conn_close($st, $c);

            } elsif ($c->{state} eq 'endless' && $c->{end} <= $now) {
                $self->endless_done($st, $c);
            }
        }

        if ($st->{dirty}) {
            $st->{dirty} = 0;
            $self->write_stats($st->{stats});
        }
    }
}


# the connection of a socket that select() found ready, unless it has been
# closed since

sub conn_of {
    my ($st, $sock) = @_;

    my $fd = fileno $sock;
    return undef unless defined $fd;

    my $c = $st->{conns}{$fd};
    return ($c && $c->{sock} && $c->{sock} == $sock) ? $c : undef;
}


# whatever dies in the handling of a connection closes that connection

sub guard {
    my ($self, $st, $c, $code) = @_;

    return if eval { $code->(); 1 };

    $self->conn_close($st, $c);
}


sub accept_all {
    my ($self, $st, $listen) = @_;

    for (1 .. 64) {
        my $sock = $listen->accept or last;

        $sock->blocking(0);

        my $c = {
            sock     => $sock,
            fd       => fileno $sock,
            serial   => ++$st->{serial},
            state    => 'read',
            rbuf     => '',
            wbuf     => '',
            woff     => 0,
            deadline => Time::HiRes::time() + $REQUEST_LIMIT,
        };

        $st->{conns}{ $c->{fd} } = $c;
        $st->{stats}{connections}++;
        $st->{dirty} = 1;
    }
}


sub conn_close {
    my ($self, $st, $c) = @_;

    my $conns = $st->{conns};

    delete $conns->{ $c->{fd} }
        if $conns->{ $c->{fd} } && $conns->{ $c->{fd} } == $c;

    $self->prices_done($st, $c);

    close $c->{sock} if $c->{sock};
    delete $c->{sock};
    $c->{state} = 'closed';
}


# a prices request in progress ends: its answer written, or its
# connection gone

sub prices_done {
    my ($self, $st, $c) = @_;

    return unless $c->{in_flight};

    $c->{in_flight} = 0;
    $st->{stats}{in_flight}--;
    $st->{dirty} = 1;
}


sub conn_read {
    my ($self, $st, $c) = @_;

    my $n = sysread $c->{sock}, my $buf, 65536;

    unless (defined $n) {
        return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        $self->conn_close($st, $c);
        return;
    }

    if ($n == 0) {
        $c->{eof} = 1;

    } else {
        # a persistent connection's next request: 5 s from its first byte
        $c->{deadline} = Time::HiRes::time() + $REQUEST_LIMIT
            if $c->{idle};
        $c->{idle} = 0;
        $c->{rbuf} .= $buf;
    }

    $self->conn_parse($st, $c);
}


sub conn_parse {
    my ($self, $st, $c) = @_;

    # a client that said nothing before it hung up
    if ($c->{eof} && $c->{rbuf} eq '') {
        $self->conn_close($st, $c);
        return;
    }

    my ($req, $used) = parse_request($c->{rbuf}, $c->{eof});

    return if $req eq 'more';

    if ($req eq 'bad') {
        $self->conn_close($st, $c);
        return;
    }

    substr($c->{rbuf}, 0, $used, '');

    $self->conn_request($st, $c, $req);
}


# a request read in full: recorded, counted, then answered now or after
# its delay

sub conn_request {
    my ($self, $st, $c, $req) = @_;

    my $ctl = $self->read_control;
    my $stats = $st->{stats};
    my $tokens = $st->{tokens};

    delete $c->{deadline};

    my $rec = {
        line    => $req->{line},
        method  => $req->{method},
        path    => $req->{path},
        query   => $req->{query},
        headers => $req->{headers},
        body    => $req->{body},
        conn    => $c->{serial},
    };

    push @{ $stats->{requests} }, $rec;
    shift @{ $stats->{requests} } while @{ $stats->{requests} } > 50;

    if (($ctl->{forget} // 0) != $st->{forgotten}) {
        %$tokens = ();
        $st->{forgotten} = $ctl->{forget} // 0;
    }

    my $conn_h = lc($req->{headers}{connection} // '');

    $c->{keep} = ($ctl->{keepalive}
                  && $conn_h !~ /\bclose\b/
                  && ($req->{line} !~ m{ HTTP/1\.0$}
                      || $conn_h =~ /\bkeep-alive\b/)) ? 1 : 0;

    $c->{ctl} = $ctl;
    $c->{req} = $req;
    $c->{rec} = $rec;
    $c->{asked} = [];
    delete $c->{single};

    my $delay;

    if ($req->{method} eq 'POST' && $req->{path} eq '/auth') {
        $stats->{auth}++;
        $delay = $ctl->{auth_delay};

    } elsif ($req->{path} eq '/prices') {
        $stats->{prices}++;
        $stats->{last_prices} = $rec;

        my ($single, @asked) = asked($req->{query});

        if ($single || @asked) {
            $rec->{asked} = [ @asked ];
        }

        if ($single) {
            $c->{single} = $asked[0];
            $stats->{by_symbol}{ $asked[0] }++;
        }

        $c->{asked} = \@asked;

        $c->{in_flight} = 1;
        $stats->{in_flight}++;
        $stats->{peak} = $stats->{in_flight}
            if $stats->{in_flight} > ($stats->{peak} // 0);

        $delay = $ctl->{delay};
    }

    if ($delay) {
        $stats->{delayed}++;
        $self->write_stats($stats);
        $c->{state} = 'delay';
        $c->{wake} = Time::HiRes::time() + $delay;
        return;
    }

    $self->conn_answer($st, $c);
}


# (1 if symbol= was used, the symbols asked for, decoded), () if none

sub asked {
    my ($query) = @_;

    my @s;

    if ($query =~ /(?:^|&)symbol=([^&]*)/) {
        @s = (1, uri_unescape($1));

    } elsif ($query =~ /(?:^|&)symbols=([^&]*)/) {
        @s = (0, map { uri_unescape($_) } split /,/, $1);

    } else {
        return ();
    }

    utf8::decode($_) for @s;

    return @s;
}


# the answer of the request read, after its delay

sub conn_answer {
    my ($self, $st, $c) = @_;

    my $ctl = $c->{ctl};
    my $req = $c->{req};
    my $rec = $c->{rec};
    my $stats = $st->{stats};
    my $tokens = $st->{tokens};

    my ($status, $body, @extra);

    if ($req->{method} eq 'POST' && $req->{path} eq '/auth') {
        my $cred = $self->{oauth} ? $self->oauth_client($req)
                                  : eval { $json->decode($req->{body}) } // {};

        if (ref $cred eq 'HASH'
            && ($req->{headers}{'content-type'} // '')
               =~ ($self->{oauth} ? qr{^application/x-www-form-urlencoded$}
                                  : qr{application/json})
            && grep { ($cred->{username} // '') eq $_->[0]
                      && ($cred->{password} // '') eq $_->[1] }
                    @{ $self->{users} })
        {
            my $token = 'tok-'
                . (defined $self->{name} ? "$self->{name}-" : '')
                . ++$st->{n} . '-' . int(rand(1e9));
            push @{ $stats->{issued} }, $token;
            $rec->{token} = $token;
            my %a = (token => $token);
            my $e = $ctl->{expires} // 3600;
            $tokens->{$token} = $e ? Time::HiRes::time() + $e : 'never';
            $a{expiresIn} = $e if $e;
            %a = (access_token => $token,
                  token_type => $ctl->{token_type} // 'Bearer',
                  $e ? (expires_in => $e) : ())
                if $self->{oauth};
            $rec->{scope} = $cred->{scope};
            ($status, $body) = (200, $json->encode(\%a));

        } else {
            ($status, $body) = (401, '{"error":"bad credentials"}');
        }

    } elsif ($req->{path} eq '/prices') {
        my $auth = $req->{headers}{authorization} // '';
        my $mode = $ctl->{mode} // 'normal';
        my $fail = $ctl->{fail_symbols} // {};
        my ($failing) = grep { exists $fail->{$_} } @{ $c->{asked} };

        if ($mode eq 'close') {
            $self->conn_close($st, $c);
            return;

        } elsif (defined $ctl->{redirect}) {
            ($status, $body) = (302, '{"error":"moved"}');
            push @extra, "Location: $ctl->{redirect}";

        } elsif ($ctl->{reject} || $mode eq '401') {
            # forget every token issued so far
            %$tokens = ();
            ($status, $body) = (401, '{"error":"bad token"}');

        } elsif (($ctl->{auth} // 1)
                    && !($auth =~ /^Bearer (.+)$/ && $tokens->{$1}
                         && ($tokens->{$1} eq 'never'
                             || $tokens->{$1} > Time::HiRes::time())))
        {
            ($status, $body) = (401, '{"error":"bad token"}');

        } elsif (defined $failing) {
            ($status, $body) = ($fail->{$failing},
                                $json->encode({ error => "failing symbol "
                                                         . $failing }));

        } elsif ($mode eq 'status') {
            ($status, $body) = ($ctl->{status} // 500, '{"error":"failing"}');

        } elsif (not_modified($ctl, $req->{headers})) {
            ($status, $body) = (304, '');
            $stats->{not_modified}++;

        } elsif ($mode eq 'body' && defined $ctl->{body_file}) {
            open my $fh, '<:raw', $ctl->{body_file} or die "body_file: $!";
            $body = do { local $/; <$fh> };
            $status = 200;

        } elsif ($mode eq 'body') {
            $body = $ctl->{body} // '';
            utf8::encode($body);
            $status = 200;

        } elsif (defined $c->{single} && ($ctl->{filter} // 1)) {
            ($status, $body) = (200, $self->single($st, $ctl, $c->{single},
                                                   $rec));

        } else {
            ($status, $body) = (200, $self->prices($st, $ctl, $req));
        }

    } else {
        ($status, $body) = (404, '{"error":"not found"}');
    }

    $rec->{status} = $status;
    $stats->{status}{$status}++;
    $self->write_stats($stats);

    my $prices = $req->{path} eq '/prices';
    my $connection = $c->{keep} ? 'keep-alive' : 'close';

    if ($ctl->{endless} && $prices && $status == 200) {
        $c->{keep} = 0;
        $c->{state} = 'endless';
        $c->{start} = Time::HiRes::time();
        $c->{end} = $c->{start} + $ENDLESS_LIMIT;
        $c->{sent} = 0;
        $c->{chunk} = '[' . join(',', ('{"symbol":"E","price":1}') x 400);
        $c->{wbuf} = "HTTP/1.1 200 X\r\nContent-Type: application/json\r\n"
                     . "Transfer-Encoding: chunked\r\n\r\n"
                     . sprintf("%x\r\n%s\r\n", length $c->{chunk},
                               $c->{chunk});
        $c->{woff} = 0;
        $self->conn_write($st, $c);
        return;
    }

    if ($prices) {
        my $h = $ctl->{headers} // {};
        push @extra, map { "$_: $h->{$_}" } sort keys %$h;
        push @extra, "ETag: $ctl->{etag}" if defined $ctl->{etag};
        push @extra, "Last-Modified: $ctl->{last_modified}"
            if defined $ctl->{last_modified};
    }

    my $extra = join '', map { "$_\r\n" } @extra;

    if ($status == 304) {
        $c->{wbuf} = "HTTP/1.1 304 X\r\n" . $extra
                     . "Connection: $connection\r\n\r\n";
        $c->{woff} = 0;
        $c->{state} = 'write';
        $self->conn_write($st, $c);
        return;
    }

    if ($ctl->{chunked} && $prices) {
        my $out = "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
                  . "Transfer-Encoding: chunked\r\n" . $extra
                  . "Connection: $connection\r\n\r\n";

        for (my $i = 0; $i < length $body; $i += 4096) {
            my $chunk = substr $body, $i, 4096;
            $out .= sprintf "%x\r\n%s\r\n", length $chunk, $chunk;
        }

        $c->{wbuf} = $out . "0\r\n\r\n";

    } else {
        $c->{wbuf} = "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
                     . "Content-Length: " . length($body) . "\r\n" . $extra
                     . "Connection: $connection\r\n\r\n" . $body;
    }

    $c->{woff} = 0;
    $c->{state} = 'write';

    $self->conn_write($st, $c);
}


# the request's conditions hold: the prices are unchanged for it

sub not_modified {
    my ($ctl, $h) = @_;

    if (defined $h->{'if-none-match'}) {
        return defined $ctl->{etag}
               && grep { $_ eq $ctl->{etag} || $_ eq '*' }
                       split /\s*,\s*/, $h->{'if-none-match'};
    }

    return defined $h->{'if-modified-since'} && defined $ctl->{last_modified}
           && $h->{'if-modified-since'} eq $ctl->{last_modified};
}


sub conn_write {
    my ($self, $st, $c) = @_;

    # an endless body gets at most 64 chunks a turn: the others' turn then
    for my $turn (1 .. 64) {
        while ($c->{woff} < length $c->{wbuf}) {
            my $n = syswrite $c->{sock}, $c->{wbuf}, 262144, $c->{woff};

            unless (defined $n) {
                return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;

                # the client hung up
                if ($c->{state} eq 'endless') {
                    $self->endless_done($st, $c);
                } else {
                    $self->conn_close($st, $c);
                }

                return;
            }

            $c->{woff} += $n;
        }

        last unless $c->{state} eq 'endless';

        # an endless body: the next chunk, while the time lasts

        $c->{sent} += length $c->{chunk};

        if (Time::HiRes::time() >= $c->{end}) {
            $self->endless_done($st, $c);
            return;
        }

        $c->{chunk} =~ s/^\[/,/;
        $c->{wbuf} = sprintf "%x\r\n%s\r\n", length $c->{chunk}, $c->{chunk};
        $c->{woff} = 0;
    }

    return if $c->{state} eq 'endless';

    # the answer is out

    $self->prices_done($st, $c);

    $c->{wbuf} = '';
    $c->{woff} = 0;

    unless ($c->{keep}) {
        $self->conn_close($st, $c);
        return;
    }

    # the next request on this connection; one already sent is read on

    $c->{state} = 'read';

    if ($c->{rbuf} eq '') {
        $c->{idle} = 1;
        $c->{deadline} = Time::HiRes::time() + $IDLE_LIMIT;

        $self->conn_close($st, $c) if $c->{eof};
        return;
    }

    $c->{idle} = 0;
    $c->{deadline} = Time::HiRes::time() + $REQUEST_LIMIT;

    $self->conn_parse($st, $c);
}


sub endless_done {
    my ($self, $st, $c) = @_;

    my $stats = $st->{stats};

    $stats->{endless_bytes} = $c->{sent};
    $stats->{endless_secs} = Time::HiRes::time() - $c->{start};
    $self->write_stats($stats);

    $self->conn_close($st, $c);
}


###############################################################################

# the next price of a symbol's random walk

sub step {
    my ($st, $s) = @_;

    my $price = $st->{price};

    $price->{$s} //= 100 + length($s) * 7;
    $price->{$s} = sprintf '%.4f',
        $price->{$s} * (1 + (rand() - 0.5) / 50);

    return $price->{$s};
}


sub record {
    my ($st, $ctl, $s) = @_;

    my %r = (symbol => $s, price => step($st, $s) + 0,
             valueDateTime => '2024-05-01T10:53:37.2982063Z',
             extra => 'ignored');

    $r{id} = sprintf '%08x-0000-4000-8000-%012x',
        length($s), unpack('%32C*', $s) if $ctl->{ids};

    return \%r;
}


# a random walk of the configured symbols (those asked for by ?symbols=),
# then the literal extra records

sub prices {
    my ($self, $st, $ctl, $req) = @_;

    my @syms = @{ $ctl->{symbols} // [qw(MSFT AAPL SAP)] };

    if (($ctl->{filter} // 1) && $req->{query} =~ /(?:^|&)symbols=([^&]*)/) {
        my (undef, @asked) = asked("symbols=$1");
        my %want = map { $_ => 1 } @asked;
        @syms = grep { $want{$_} } @syms;
    }

    my @recs = map { record($st, $ctl, $_) } @syms;

    push @recs, @{ $ctl->{records} // [] };

    return $json->encode(\@recs);
}


# the answer to symbol=: that symbol's record, or single_template filled in

sub single {
    my ($self, $st, $ctl, $s, $rec) = @_;

    my $r = record($st, $ctl, $s);

    $rec->{price} = $r->{price};

    return $json->encode($r) unless defined $ctl->{single_template};

    my $body = $ctl->{single_template};
    my $sym = $json->encode([ $s ]);
    utf8::decode($sym);
    $sym =~ s/^\["|"\]$//g;

    $body =~ s/\{\{symbol\}\}/$sym/g;
    $body =~ s/\{\{price\}\}/$r->{price}/g;
    utf8::encode($body);

    return $body;
}


# OAuth2: {username, password, scope} from Basic and the form body, or
# undef if the body is not grant_type=client_credentials[&scope=...]

sub oauth_client {
    my ($self, $req) = @_;

    my ($basic) = ($req->{headers}{authorization} // '') =~ /^Basic (\S+)$/
        or return undef;

    require MIME::Base64;
    my ($id, $secret) = split /:/, MIME::Base64::decode_base64($basic), 2;
    return undef unless defined $secret;

    my ($scope) = $req->{body} =~ /^grant_type=client_credentials
                                   (?:&scope=([^&]*))?$/x
        or return undef;

    my $form = sub { my $v = shift; $v =~ tr/+/ /; uri_unescape($v) };

    return { username => $form->($id), password => $form->($secret),
             scope => defined $scope ? $form->($scope) : undef };
}


sub uri_unescape {
    my ($s) = @_;
    $s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
    return $s;
}


# a request from the front of $buf: (request, bytes used), 'more' while
# it is incomplete, 'bad' for one to drop.  At the client's end of data
# ($eof) what there is is the request, as a blocking reader sees it: the
# last line unterminated, the body cut short.

sub parse_request {
    my ($buf, $eof) = @_;

    my $nl = index $buf, "\n";
    my ($line, $pos);

    if ($nl >= 0) {
        ($line, $pos) = (substr($buf, 0, $nl + 1), $nl + 1);

    } elsif ($eof) {
        ($line, $pos) = ($buf, length $buf);

    } else {
        return 'more';
    }

    my ($method, $uri) = $line =~ m{^(\S+)\s+(\S+)};
    return 'bad' unless $method;

    $line =~ s/\r?\n$//;

    my %h;

    while ($pos < length $buf || !$eof) {
        my $e = index $buf, "\n", $pos;

        if ($e < 0) {
            return 'more' unless $eof;
            $e = length($buf) - 1;
        }

        my $l = substr $buf, $pos, $e + 1 - $pos;
        $pos = $e + 1;

        $l =~ s/\r?\n$//;
        last if $l eq '';
        $h{lc $1} = $2 if $l =~ /^([^:]+):\s*(.*)$/;
    }

    my $body = '';

    if (my $len = $h{'content-length'}) {
        return 'bad' unless $len =~ /^\d{1,7}$/;

        if (length($buf) - $pos < $len) {
            return 'more' unless $eof;
            $len = length($buf) - $pos;
        }

        $body = substr $buf, $pos, $len;
        $pos += $len;
    }

    my ($path, $query) = split /\?/, $uri, 2;

    return ({ line => $line, method => $method, path => $path,
              query => $query // '', headers => \%h, body => $body }, $pos);
}


1;
