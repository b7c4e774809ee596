package StockTest;

# A small harness for ngx_stockprice's integration tests, in the spirit of
# nginx-tests: a temporary prefix per test file, the configuration inline
# with placeholders, free ports from port(), helper daemons, QUIT-and-wait
# on stop, and at the end a check that error.log has no alert, crit or emerg.
#
# Usage (from the repository root: prove -I t/lib t/):
#
#   my $t = StockTest->new;                 # temp prefix with logs/
#   $t->write_config(<<'EOF');              # complete nginx.conf, see below
#   ...
#   EOF
#   $t->run;                                # daemon; waits for every listen
#   my $r = $t->http_get('/api/StockPrice');
#   ...
#   $t->done;                               # stop, "no alerts in error.log"
#   done_testing;
#
# Environment:
#   NGINX_BIN          nginx binary (default /usr/sbin/nginx)
#   STOCKPRICE_MODULE  the module
#                      (default <repo>/build/ngx_http_stockprice_module.so)
#   TEST_KEEP=1        keep the temporary prefix, and say where it is
#   TEST_VALGRIND=1    run nginx under valgrind (memcheck): every wait is
#                      stretched by SLOW, time limits through limit() too,
#                      and done() fails on invalid reads, writes or frees
#                      anywhere, on memory definitely lost from the
#                      module's code and on memory of the module or libcurl
#                      still held at exit; the reports stay in <prefix>/vg.*
#                      (./build.sh valgrind sets this)
#
# Configurations are complete nginx.conf texts: the harness adds nothing to
# them and starts nginx as "nginx -p <prefix>/ -c <prefix>/nginx.conf"
# (nginx -t likewise), so relative paths land in the prefix.  A test's
# configuration carries daemon, pid and error_log itself, most simply
# through %%BASE%%, and the temp paths through %%TEMPS%% (the packaged
# defaults under /var/lib/nginx may not be writable).  run() needs
# "daemon on", the pid file at <prefix>/nginx.pid and error_log at
# <prefix>/error.log: %%BASE%% writes exactly that.
#
# Placeholders in configurations:
#   %%MODULE%%    load_module line for the built module
#   %%PORT_n%%    a free 127.0.0.1 port, the same for one n within a file
#   %%TESTDIR%%   the temporary prefix
#   %%BASE%%      daemon, pid and error_log (level info) lines
#   %%TEMPS%%     *_temp_path lines inside the prefix (http context)
#
# Every wait is a bounded poll (wait_for); only processes started here are
# signalled, by pid.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');

# under valgrind nginx runs some 20 times slower
our $VALGRIND = $ENV{TEST_VALGRIND} ? 1 : 0;
our $SLOW = $VALGRIND ? 20 : 1;

my @instances;


sub new {
    my ($class) = @_;

    my $dir = tempdir('stockprice-t-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{TEST_KEEP});

    mkdir "$dir/logs";

    my $self = bless {
        dir     => $dir,
        ports   => {},
        daemons => [],
        nginx   => $ENV{NGINX_BIN} || '/usr/sbin/nginx',
        # absolute: nginx would take a relative path from the prefix
        module  => do {
            my $m = $ENV{STOCKPRICE_MODULE}
                    || "$ROOT/build/ngx_http_stockprice_module.so";
            abs_path($m) // $m;
        },
        allow   => [],
        valgrind => '',
    }, $class;

    if ($VALGRIND) {
        $self->{valgrind} = "valgrind -q --tool=memcheck --leak-check=full "
            . "--show-leak-kinds=definite,reachable "
            . "--errors-for-leak-kinds=definite "
            . "--num-callers=30 --log-file=$dir/vg.%p ";
    }

    push @instances, $self;

    diag("test dir $dir") if $ENV{TEST_KEEP};

    return $self;
}


sub dir { $_[0]{dir} }


sub port {
    my ($self, $n) = @_;

    return $self->{ports}{$n} //= do {
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                      LocalPort => 0, ReuseAddr => 1)
            or die "cannot find a free port: $!";
        my $p = $s->sockport;
        close $s;
        $p;
    };
}


sub write_file {
    my ($self, $name, $content) = @_;

    open my $fh, '>', "$self->{dir}/$name" or die "$name: $!";
    binmode $fh;
    print $fh $content;
    close $fh;

    return "$self->{dir}/$name";
}


sub read_file {
    my ($self, $name) = @_;

    open my $fh, '<', "$self->{dir}/$name" or return '';
    local $/;
    my $content = <$fh>;
    close $fh;

    return $content;
}


sub expand {
    my ($self, $text) = @_;

    my $d = $self->{dir};

    my $base = "daemon on;\npid $d/nginx.pid;\nerror_log $d/error.log info;";
    my $temps = join '', map { "${_}_temp_path $d/${_}_temp;\n" }
                         qw(client_body proxy fastcgi uwsgi scgi);

    $text =~ s/%%MODULE%%/load_module $self->{module};/g;
    $text =~ s/%%BASE%%/$base/g;
    $text =~ s/%%TEMPS%%/$temps/g;
    $text =~ s/%%PORT_(\d+)%%/$self->port($1)/ge;
    $text =~ s/%%TESTDIR%%/$d/g;

    return $text;
}


sub write_config {
    my ($self, $text) = @_;

    $self->{conf_text} = $self->expand($text);
    $self->write_file('nginx.conf', $self->{conf_text});

    return $self;
}


# (exit code, output) of nginx -t

sub test_config {
    my ($self) = @_;

    my $d = $self->{dir};
    my $out = `$self->{nginx} -t -p $d/ -c $d/nginx.conf 2>&1`;

    return ($? >> 8, $out);
}


# a configuration of one line in its http block (line 7 of nginx.conf)
# that nginx -t must refuse with a message matching $re naming that line:
# two assertions, "$name: nginx -t fails" and "$name: says why, where";
# returns nginx -t's output for more

sub config_fails {
    my ($self, $name, $http, $re) = @_;

    $self->write_config("%%MODULE%%\n%%BASE%%\nevents { }\nhttp {\n"
                        . "    $http\n}\n");

    my ($rc, $out) = $self->test_config;

    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/$re.* in \Q$self->{dir}\E\/nginx\.conf:7\b/,
         "$name: says why, where");

    return $out;
}


sub run {
    my ($self) = @_;

    my $d = $self->{dir};
    my $out = `$self->{valgrind}$self->{nginx} -p $d/ -c $d/nginx.conf 2>&1`;

    die "nginx failed to start: $out\n" . $self->read_file('error.log')
        if $?;

    my @ports = $self->{conf_text} =~ /listen\s+127\.0\.0\.1:(\d+)/g;

    my $ok = $self->wait_for(sub {
        return 0 unless $self->master_pid;
        for my $p (@ports) {
            my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p",
                                          Timeout => 1) or return 0;
            close $s;
        }
        return 1;
    }, 5);

    die "nginx did not come up\n" . $self->read_file('error.log')
        unless $ok;

    # and every worker is there: a port answers as soon as the first is
    my ($n) = $self->{conf_text} =~ /^\s*worker_processes\s+(\d+)\s*;/m;
    $self->wait_for(sub { my @w = $self->worker_pids; @w >= ($n // 1) }, 5);

    $self->{running} = 1;
    $self->{started} = 1;

    return $self;
}


sub master_pid {
    my ($self) = @_;

    my $pid = $self->read_file('nginx.pid');
    return undef unless $pid && $pid =~ /(\d+)/;
    return alive($1) ? $1 : undef;
}


# a process that has exited but is not reaped yet (the daemonized master's
# parent is whatever init this machine has) counts as gone

sub alive {
    my ($pid) = @_;

    return 0 unless kill 0, $pid;

    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // '';
    close $fh;

    return $stat !~ /^\d+ \(.*\) Z/;
}


sub worker_pids {
    my ($self) = @_;

    my $master = $self->master_pid or return ();
    my @pids;

    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // '';
        close $fh;
        # pid (comm) state ppid
        # under valgrind the command is memcheck's
        push @pids, $1
            if $line =~ /^(\d+) \((?:nginx|memcheck-amd64-)\) \S+ (\d+)/
                          && $2 == $master;
    }

    return sort { $a <=> $b } @pids;
}


# the workers holding a TCP connection to 127.0.0.1:$port (from
# /proc/net/tcp and the workers' fds)

sub workers_connected_to {
    my ($self, $port) = @_;

    my %inode;

    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        while (my $l = <$fh>) {
            # sl local rem st ... uid timeout inode
            my @f = split ' ', $l;
            next unless @f > 9 && $f[2] =~ /:([0-9A-F]{4})$/;
            $inode{ $f[9] } = 1 if hex($1) == $port && $f[9];
        }
        close $fh;
    }

    my @pids;

    for my $pid ($self->worker_pids) {
        for my $fd (glob "/proc/$pid/fd/*") {
            my $l = readlink $fd // next;
            if ($l =~ /^socket:\[(\d+)\]$/ && $inode{$1}) {
                push @pids, $pid;
                last;
            }
        }
    }

    return @pids;
}


sub signal {
    my ($self, $sig) = @_;

    my $pid = $self->master_pid or return 0;
    return kill $sig, $pid;
}


# HUP; with a true $wait, also wait (bounded) until none of the workers of
# before is left and new ones serve; false if that did not happen

sub reload {
    my ($self, $wait) = @_;

    my @old = $self->worker_pids;

    $self->signal('HUP') or return 0;

    return 1 unless $wait;

    return $self->wait_for(sub {
        my %now = map { $_ => 1 } $self->worker_pids;
        return %now && !grep { $now{$_} } @old;
    }, 10);
}


# QUIT (or $sig), then wait up to 5 s for the master to go; seconds taken.
# A master still there is a failed test, then TERM and at last KILL for it
# and its workers; undef is returned then.

sub stop {
    my ($self, $sig) = @_;

    my $pid = $self->master_pid;

    $self->{running} = 0;

    return 0 unless $pid;

    my @workers = $self->worker_pids;
    my $start = time;

    kill $sig // 'QUIT', $pid;

    my $gone = $self->wait_for(sub { !alive($pid) }, 5);
    my $took = time - $start;

    return $took if $gone;

    fail("nginx master $pid exits within 5 s of " . ($sig // 'QUIT'));

    kill 'TERM', $pid;

    unless ($self->wait_for(sub { !alive($pid) }, 2)) {
        kill 'KILL', $pid, grep { alive($_) } @workers;
        $self->wait_for(sub { !alive($pid) }, 2);
    }

    return undef;
}


sub run_daemon {
    my ($self, $code, @args) = @_;

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        # never run the parent's END blocks in the child
        eval { $code->(@args) };
        POSIX::_exit(0);
    }

    push @{ $self->{daemons} }, $pid;

    return $pid;
}


# poll $code every 0.05 s until it returns true (that value is returned) or
# $timeout seconds (default 5) have passed (false); bounded in time and count.
# Under valgrind $timeout is stretched, unless $exact: a check that nothing
# happens within a time keeps its time

sub wait_for {
    my ($self, $code, $timeout, $exact) = @_;

    $timeout = ($timeout // 5) * ($exact ? 1 : $SLOW);

    my $end = time + $timeout;
    my $max = int($timeout / 0.05) + 2;

    for (1 .. $max) {
        my $r = $code->();
        return $r if $r;
        last if time > $end;
        sleep 0.05;
    }

    return 0;
}


sub http {
    my ($self, $method, $url, %opts) = @_;

    $url = 'http://127.0.0.1:' . $self->port(0) . $url if $url =~ m{^/};

    my $ua = HTTP::Tiny->new(timeout => ($opts{timeout} // 5) * $SLOW,
                             keep_alive => 0);

    return $ua->request($method, $url, {
        headers => $opts{headers} // {},
        defined $opts{content} ? (content => $opts{content}) : (),
    });
}


sub get { my ($self, $url, %h) = @_; $self->http('GET', $url, headers => \%h) }

sub http_get { my $self = shift; $self->get(@_) }


# decode a JSON text, undef if it is not JSON

sub json_decode {
    my ($self, $text) = @_;

    return undef unless defined $text;
    return eval { JSON::PP->new->allow_nonref->decode($text) };
}


# the decoded JSON body of a GET, or undef

sub get_json {
    my ($self, $url) = @_;

    my $r = $self->get($url);
    return undef unless $r->{success};
    return eval { JSON::PP->new->decode($r->{content}) };
}


sub status {
    my ($self, $url) = @_;

    return $self->get_json($url // '/status') // {};
}


# wait until the status counter $key reaches $n

sub wait_status {
    my ($self, $key, $n, $timeout, $url) = @_;

    return $self->wait_for(sub {
        my $st = $self->status($url);
        return ($st->{$key} // 0) >= $n;
    }, $timeout // 10);
}


# error.log lines at a level that must never happen, minus those allowed

sub allow_log {
    my ($self, $re) = @_;

    push @{ $self->{allow} }, $re;
}


sub check_log {
    my ($self) = @_;

    my @bad = grep {
        my $l = $_;
        $l =~ /\[(alert|crit|emerg)\]/ && !grep { $l =~ $_ } @{ $self->{allow} }
    } split /\n/, $self->read_file('error.log');

    is(join("\n", @bad), '', 'no alerts in error.log');
}


# a time limit in seconds, stretched under valgrind

# openssl for a test's own CA and certificates, in the prefix:
# make_ca(NAME) writes NAME.key and NAME.pem; make_cert(NAME, CA, SAN)
# NAME.key and NAME.pem signed by CA, with subjectAltName SAN

sub openssl {
    my ($self, @args) = @_;

    my $out = `openssl @args 2>&1`;
    die "openssl @args: $out" if $?;
}

sub make_ca {
    my ($self, $name) = @_;
    my $d = $self->{dir};

    $self->openssl("ecparam -name prime256v1 -genkey -noout -out $d/$name.key");
    $self->openssl("req -x509 -new -key $d/$name.key -out $d/$name.pem"
                   . " -days 2 -subj /CN=$name");
}

sub make_cert {
    my ($self, $name, $ca, $san) = @_;
    my $d = $self->{dir};

    $self->openssl("ecparam -name prime256v1 -genkey -noout -out $d/$name.key");
    $self->openssl("req -new -key $d/$name.key -out $d/$name.csr"
                   . " -subj /CN=$name");
    $self->write_file("$name.ext", "subjectAltName=$san\n");
    $self->openssl("x509 -req -in $d/$name.csr -CA $d/$ca.pem"
                   . " -CAkey $d/$ca.key -CAcreateserial -out $d/$name.pem"
                   . " -days 2 -extfile $d/$name.ext");
}


sub limit {
    my ($self, $seconds) = @_;

    return $seconds * $SLOW;
}


# valgrind's reports under the prefix: the records of invalid accesses
# anywhere, of definite leaks whose stack passes through the module, and
# of memory still reachable at exit that the module or libcurl allocated
# (a curl handle, the multi handle, a buffer not released by exit_process)

sub valgrind_problems {
    my ($self) = @_;

    my @bad;

    for my $f (glob "$self->{dir}/vg.*") {
        my $text = do { local (@ARGV, $/) = $f; <> } // '';

        # records are separated by lines holding only "==pid=="
        for my $rec (split /^==\d+==[ \t]*\n/m, $text) {
            push @bad, $rec
                if $rec =~ /Invalid\s(read|write|free)|Mismatched\sfree|
                            Source\sand\sdestination\soverlap|
                            Conditional\sjump\s.*\suninitialised/x
                   || $rec =~ /definitely lost/
                      && $rec =~ /ngx_http_stockprice/
                   || $rec =~ /still reachable/
                      && $rec =~ /ngx_http_stockprice|curl_|Curl_/;
        }
    }

    return @bad;
}


sub check_valgrind {
    my ($self) = @_;

    return unless $VALGRIND && $self->{started};

    my @reports = glob "$self->{dir}/vg.*";

    ok(@reports > 0, 'valgrind reports written (' . @reports . ')');
    is(join("\n", $self->valgrind_problems), '',
       'valgrind: no invalid access, no definite leak from the module');
}


sub done {
    my ($self) = @_;

    $self->stop if $self->{running};
    $self->check_log;
    $self->check_valgrind;
    $self->cleanup;
}


sub cleanup {
    my ($self) = @_;

    for my $pid (@{ $self->{daemons} }) {
        kill 'TERM', $pid;
    }

    for my $pid (@{ $self->{daemons} }) {
        for (1 .. 100) {
            last if waitpid($pid, WNOHANG) != 0;
            sleep 0.02;
        }
        kill 'KILL', $pid;
        waitpid($pid, WNOHANG);
    }

    $self->{daemons} = [];
}


END {
    for my $t (@instances) {
        $t->stop if $t->{running} && $t->master_pid;
        $t->cleanup;
    }
}


1;
