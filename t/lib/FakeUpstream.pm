package FakeUpstream;

# A fake upstream API (CONTRACT section 3) for the integration tests: a
# forked, single-process HTTP/1.1 server on 127.0.0.1, one request per
# connection.
#
#   POST /auth    {"username","password"} -> {"token":"tok-N","expiresIn":E}
#   GET  /prices  -> a JSON array of records, prices changing per request
#
# Robust against whatever a client sends: a malformed or slow request is
# dropped (5 s limit) and the server goes on with the next connection.
#
# Stats: auth and prices (counts of requests), delayed (requests being or
# having been delayed), status (count per status answered), last_prices,
# issued (every token issued, oldest first), and requests: the last 50
# requests, each with line, method, path, query, headers (names
# lowercased), body, status and, for an auth request answered with a
# token, that token.
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
# every request) and reads its counters from a stats file (JSON, written
# after every request):
#
#   mode      "normal" | "status" | "body" | "close" | "401"
#   status    the status for mode "status"
#   body      the literal body for mode "body" (status 200)
#   body_file for mode "body": a file whose bytes are the body (for bodies
#             of megabytes, that the control file would be slow to carry)
#   delay     seconds to wait before answering a prices request
#   auth_delay  the same for auth requests
#   symbols   the symbols served (default MSFT, AAPL, SAP)
#   records   extra literal records (Perl structures) appended
#   filter    0: ignore ?symbols= and serve every symbol (default 1)
#   chunked   1: send prices bodies chunked (no Content-Length)
#   endless   1: a prices body that never ends: "[" and then records,
#             chunked, until the client hangs up (at most 5 s); the count
#             of bytes sent goes to stats "endless_bytes", the seconds
#             taken to "endless_secs"
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

use strict;
use warnings;

use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep);

# texts in UTF-8: control, stats and bodies
my $json = JSON::PP->new->canonical->utf8;


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
                         issued => [] });

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


sub serve {
    my ($self, $listen) = @_;

    my $st = {
        price     => {},
        tokens    => {},
        n         => 0,
        forgotten => 0,
        stats     => { auth => 0, prices => 0, delayed => 0,
                       requests => [], issued => [] },
    };

    $SIG{PIPE} = 'IGNORE';

    # until killed; a bad connection never ends the loop
    while (1) {
        my $c = $listen->accept;

        unless ($c) {
            sleep 0.01;
            next;
        }

        eval { $self->handle($st, $c); };
        alarm 0;
        close $c;
    }
}


sub handle {
    my ($self, $st, $c) = @_;

    my $req = read_request($c) or return;

    my $ctl = $self->read_control;
    my $stats = $st->{stats};
    my $tokens = $st->{tokens};

    push @{ $stats->{requests} }, {
        line    => $req->{line},
        method  => $req->{method},
        path    => $req->{path},
        query   => $req->{query},
        headers => $req->{headers},
        body    => $req->{body},
    };
    shift @{ $stats->{requests} } while @{ $stats->{requests} } > 50;

    if (($ctl->{forget} // 0) != $st->{forgotten}) {
        %$tokens = ();
        $st->{forgotten} = $ctl->{forget} // 0;
    }

    my ($status, $body);

    if ($req->{method} eq 'POST' && $req->{path} eq '/auth') {
        $stats->{auth}++;
        if ($ctl->{auth_delay}) {
            $stats->{delayed}++;
            $self->write_stats($stats);
            sleep $ctl->{auth_delay};
        }

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
            $stats->{requests}[-1]{token} = $token;
            my %a = (token => $token);
            my $e = $ctl->{expires} // 3600;
            $tokens->{$token} = $e ? Time::HiRes::time() + $e : 'never';
            $a{expiresIn} = $e if $e;
            %a = (access_token => $token,
                  token_type => $ctl->{token_type} // 'Bearer',
                  $e ? (expires_in => $e) : ())
                if $self->{oauth};
            $stats->{requests}[-1]{scope} = $cred->{scope};
            ($status, $body) = (200, $json->encode(\%a));

        } else {
            ($status, $body) = (401, '{"error":"bad credentials"}');
        }

    } elsif ($req->{path} eq '/prices') {
        $stats->{prices}++;
        $stats->{last_prices} = $stats->{requests}[-1];
        if ($ctl->{delay}) {
            $stats->{delayed}++;
            $self->write_stats($stats);
            sleep $ctl->{delay};
        }

        my $auth = $req->{headers}{authorization} // '';
        my $mode = $ctl->{mode} // 'normal';

        if ($mode eq 'close') {
            return;

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

        } elsif ($mode eq 'status') {
            ($status, $body) = ($ctl->{status} // 500, '{"error":"failing"}');

        } elsif ($mode eq 'body' && defined $ctl->{body_file}) {
            open my $fh, '<:raw', $ctl->{body_file} or die "body_file: $!";
            $body = do { local $/; <$fh> };
            $status = 200;

        } elsif ($mode eq 'body') {
            $body = $ctl->{body} // '';
            utf8::encode($body);
            $status = 200;

        } else {
            ($status, $body) = (200, $self->prices($st, $ctl, $req));
        }

    } else {
        ($status, $body) = (404, '{"error":"not found"}');
    }

    $stats->{requests}[-1]{status} = $status;
    $stats->{status}{$status}++;
    $self->write_stats($stats);

    if ($ctl->{endless} && $req->{path} eq '/prices' && $status == 200) {
        print $c "HTTP/1.1 200 X\r\nContent-Type: application/json\r\n"
                 . "Transfer-Encoding: chunked\r\n\r\n";

        local $SIG{PIPE} = 'IGNORE';
        my $chunk = '[' . join(',', ('{"symbol":"E","price":1}') x 400);
        my $start = Time::HiRes::time();
        my ($sent, $end) = (0, $start + 5);

        $c->autoflush(1);

        while (Time::HiRes::time() < $end) {
            last unless print $c sprintf("%x\r\n%s\r\n", length $chunk,
                                         $chunk);
            $sent += length $chunk;
            $chunk =~ s/^\[/,/;
        }

        $stats->{endless_bytes} = $sent;
        $stats->{endless_secs} = Time::HiRes::time() - $start;
        $self->write_stats($stats);
        return;
    }

    if ($ctl->{chunked} && $req->{path} eq '/prices') {
        print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
                 . "Transfer-Encoding: chunked\r\n"
                 . "Connection: close\r\n\r\n";

        for (my $i = 0; $i < length $body; $i += 4096) {
            my $chunk = substr $body, $i, 4096;
            printf $c "%x\r\n%s\r\n", length $chunk, $chunk;
        }

        print $c "0\r\n\r\n";
        return;
    }

    my $extra = '';

    if ($req->{path} eq '/prices') {
        my $h = $ctl->{headers} // {};
        $extra = join '', map { "$_: $h->{$_}\r\n" } sort keys %$h;
    }

    print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
             . "Content-Length: " . length($body) . "\r\n" . $extra
             . "Connection: close\r\n\r\n" . $body;
}


# a random walk of the configured symbols (those asked for by ?symbols=),
# then the literal extra records

sub prices {
    my ($self, $st, $ctl, $req) = @_;

    my $price = $st->{price};
    my @syms = @{ $ctl->{symbols} // [qw(MSFT AAPL SAP)] };

    if (($ctl->{filter} // 1) && $req->{query} =~ /(?:^|&)symbols=([^&]*)/) {
        my %want = map { $_ => 1 } split /,/, uri_unescape($1);
        @syms = grep { $want{$_} } @syms;
    }

    my @recs;

    for my $s (@syms) {
        $price->{$s} //= 100 + length($s) * 7;
        $price->{$s} = sprintf '%.4f',
            $price->{$s} * (1 + (rand() - 0.5) / 50);
        my %r = (symbol => $s, price => $price->{$s} + 0,
                 valueDateTime => '2024-05-01T10:53:37.2982063Z',
                 extra => 'ignored');
        $r{id} = sprintf '%08x-0000-4000-8000-%012x',
            length($s), unpack('%32C*', $s) if $ctl->{ids};
        push @recs, \%r;
    }

    push @recs, @{ $ctl->{records} // [] };

    return $json->encode(\@recs);
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


sub read_request {
    my ($c) = @_;

    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 5;

    my $line = <$c>;
    return undef unless defined $line;

    my ($method, $uri) = $line =~ m{^(\S+)\s+(\S+)};
    return undef unless $method;

    $line =~ s/\r?\n$//;

    my %h;
    while (my $l = <$c>) {
        $l =~ s/\r?\n$//;
        last if $l eq '';
        $h{lc $1} = $2 if $l =~ /^([^:]+):\s*(.*)$/;
    }

    my $body = '';
    if (my $len = $h{'content-length'}) {
        return undef unless $len =~ /^\d{1,7}$/;
        read($c, $body, $len);
    }

    alarm 0;

    my ($path, $query) = split /\?/, $uri, 2;

    return { line => $line, method => $method, path => $path,
             query => $query // '', headers => \%h, body => $body };
}


1;
