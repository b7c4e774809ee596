package FakeUpstream;

# A fake upstream API (CONTRACT section 3) for the integration tests: a
# forked, single-process HTTP/1.1 server on 127.0.0.1, one request per
# connection.
#
#   POST /auth    {"username","password"} -> {"token":"tok-N","expiresIn":E}
#   GET  /prices  -> a JSON array of records, prices changing per request
#
# The test steers it at run time through a control file (JSON, read on
# every request) and reads its counters from a stats file (JSON, written
# after every request):
#
#   mode      "normal" | "status" | "body" | "close"
#   status    the status for mode "status"
#   body      the literal body for mode "body" (status 200)
#   delay     seconds to wait before answering a prices request
#   symbols   the symbols served (default MSFT, AAPL, SAP)
#   records   extra literal records (Perl structures) appended
#   ids       1: give every record an id (a fixed UUID per symbol)
#   reject    1: forget all tokens, answer 401 to every prices request
#   expires   expiresIn of issued tokens, enforced (default 3600; 0: left
#             out, the token never expires)

use strict;
use warnings;

use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep);

my $json = JSON::PP->new->canonical;


sub start {
    my ($class, $t, %opts) = @_;

    my $port = $opts{port} // $t->port(1);
    my $dir = $t->dir;
    my $self = bless {
        t        => $t,
        port     => $port,
        control  => "$dir/upstream.control",
        stats    => "$dir/upstream.stats",
        user     => $opts{user} // 'alice',
        password => $opts{password} // 'pa"ss:word',
    }, $class;

    $self->control({});
    $self->write_stats({ auth => 0, prices => 0, requests => [] });

    my $listen = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                       LocalPort => $port, ReuseAddr => 1)
        or die "fake upstream cannot listen on $port: $!";

    $t->run_daemon(sub { $self->serve($listen) });
    close $listen;

    return $self;
}


sub port { $_[0]{port} }

sub url { 'http://127.0.0.1:' . $_[0]{port} . ($_[1] // '') }


sub credentials { "$_[0]{user}:$_[0]{password}\n" }


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

    my %price;
    my %tokens;
    my $token = '';
    my $n = 0;
    my $stats = { auth => 0, prices => 0, requests => [] };

    $SIG{PIPE} = 'IGNORE';

    while (my $c = $listen->accept) {
        my $req = eval { read_request($c) };

        unless ($req) {
            close $c;
            next;
        }

        my $ctl = $self->read_control;

        push @{ $stats->{requests} }, {
            method  => $req->{method},
            path    => $req->{path},
            query   => $req->{query},
            headers => $req->{headers},
            body    => $req->{body},
        };
        shift @{ $stats->{requests} } while @{ $stats->{requests} } > 50;

        my ($status, $body);

        if ($req->{method} eq 'POST' && $req->{path} eq '/auth') {
            $stats->{auth}++;
            my $cred = eval { $json->decode($req->{body}) } // {};

            if (ref $cred eq 'HASH'
                && ($req->{headers}{'content-type'} // '') =~ m{application/json}
                && ($cred->{username} // '') eq $self->{user}
                && ($cred->{password} // '') eq $self->{password})
            {
                $token = 'tok-' . ++$n . '-' . int(rand(1e9));
                my %a = (token => $token);
                my $e = $ctl->{expires} // 3600;
                $tokens{$token} = $e ? Time::HiRes::time() + $e : 'never';
                $a{expiresIn} = $e if $e;
                ($status, $body) = (200, $json->encode(\%a));

            } else {
                ($status, $body) = (401, '{"error":"bad credentials"}');
            }

        } elsif ($req->{path} eq '/prices') {
            $stats->{prices}++;
            $stats->{last_prices} = $stats->{requests}[-1];
            $self->write_stats($stats);

            sleep $ctl->{delay} if $ctl->{delay};

            my $auth = $req->{headers}{authorization} // '';
            my $mode = $ctl->{mode} // 'normal';

            if ($mode eq 'close') {
                close $c;
                next;

            } elsif ($ctl->{reject}) {
                # forget every token issued so far
                %tokens = ();
                ($status, $body) = (401, '{"error":"bad token"}');

            } elsif (($ctl->{auth} // 1)
                        && !($auth =~ /^Bearer (.+)$/ && $tokens{$1}
                             && ($tokens{$1} eq 'never'
                                 || $tokens{$1} > Time::HiRes::time())))
            {
                ($status, $body) = (401, '{"error":"bad token"}');

            } elsif ($mode eq 'status') {
                ($status, $body) = ($ctl->{status}, '{"error":"failing"}');

            } elsif ($mode eq 'body') {
                ($status, $body) = (200, $ctl->{body});

            } else {
                my @syms = @{ $ctl->{symbols} // [qw(MSFT AAPL SAP)] };
                my %want;
                if ($req->{query} =~ /(?:^|&)symbols=([^&]*)/) {
                    %want = map { $_ => 1 } split /,/, uri_unescape($1);
                }

                my @recs;
                for my $s (@syms) {
                    $price{$s} //= 100 + length($s) * 7;
                    $price{$s} = sprintf '%.4f',
                        $price{$s} * (1 + (rand() - 0.5) / 50);
                    my %r = (symbol => $s, price => $price{$s} + 0,
                             valueDateTime => '2024-05-01T10:53:37.2982063Z',
                             extra => 'ignored');
                    $r{id} = sprintf '%08x-0000-4000-8000-%012x',
                        length($s), unpack('%32C*', $s) if $ctl->{ids};
                    push @recs, \%r;
                }
                push @recs, @{ $ctl->{records} // [] };
                ($status, $body) = (200, $json->encode(\@recs));
            }

        } else {
            ($status, $body) = (404, '{"error":"not found"}');
        }

        $stats->{requests}[-1]{status} = $status;
        $stats->{status}{$status}++;
        $self->write_stats($stats);

        print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
                 . "Content-Length: " . length($body) . "\r\n"
                 . "Connection: close\r\n\r\n" . $body;
        close $c;
    }
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

    my %h;
    while (my $l = <$c>) {
        $l =~ s/\r?\n$//;
        last if $l eq '';
        $h{lc $1} = $2 if $l =~ /^([^:]+):\s*(.*)$/;
    }

    my $body = '';
    if (my $len = $h{'content-length'}) {
        read($c, $body, $len);
    }

    alarm 0;

    my ($path, $query) = split /\?/, $uri, 2;

    return { method => $method, path => $path, query => $query // '',
             headers => \%h, body => $body };
}


1;
