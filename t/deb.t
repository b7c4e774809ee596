#!/usr/bin/perl

# The Debian package (issue "A Debian package"), with the SYSTEM nginx:
#
# - build/libnginx-mod-http-stockprice_*.deb (./build.sh deb) installs
#   into the machine's nginx with apt-get: the .so in /usr/lib/nginx/modules,
#   the load file written by dh_nginx in /usr/share/nginx/modules-available,
#   linked from /etc/nginx/modules-enabled as Debian's libnginx-mod-*
#   packages are; the package depends on the nginx-abi-* the installed
#   nginx provides; the system's nginx -t passes and its configuration
#   (nginx -T) loads the module.
# - The packaged example (examples/stockprice.conf, a conf.d file without
#   load_module) serves the demo feed's prices through /usr/sbin/nginx: a
#   separate nginx with a temporary prefix whose main configuration
#   includes /etc/nginx/modules-enabled/*.conf (the package's load file
#   loads the module) and the example, its port 8080 (listen and the poll
#   URL) replaced by a free one.  The credentials example works with the
#   auth lines the example's comment describes.
# - apt-get purge leaves nothing: no file of the package's dpkg -L, no
#   directory of it that no other package owns, no modules-enabled link;
#   dpkg -s says it is not installed; the system's nginx -t still passes.
#
# The machine is left as found: the test refuses to run (skip) when the
# package is installed already, or was removed without purge, or the
# system's nginx -t fails before it; whatever happens once it has
# installed the package, it purges it again (END).  It never starts,
# stops or reloads the system's nginx service itself; the package's own
# trigger (nginx-reload, as every libnginx-mod-* package's) reloads a
# running service on install and purge, and the test says so when one
# runs.  Needs root.

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);

use lib 't/lib';
use StockTest;

my $PKG      = 'libnginx-mod-http-stockprice';
my $NGINX    = '/usr/sbin/nginx';
my $SO       = '/usr/lib/nginx/modules/ngx_http_stockprice_module.so';
my $AVAIL    = '/usr/share/nginx/modules-available/mod-http-stockprice.conf';
my $ENABLED  = '/etc/nginx/modules-enabled/50-mod-http-stockprice.conf';
my $EXAMPLES = "/usr/share/doc/$PKG/examples";
my $APT      = 'DEBIAN_FRONTEND=noninteractive apt-get -y -q '
             . '-o DPkg::Lock::Timeout=120';

###############################################################################

plan skip_all => 'installs a package into the system: needs root' if $> != 0;

my @debs = sort { -M $a <=> -M $b }
           glob "$StockTest::ROOT/build/${PKG}_*.deb";

unless (@debs) {
    fail("build/${PKG}_<version>_<arch>.deb is there "
         . '(./build.sh deb builds it)');
    done_testing;
    exit;
}

my $deb = $debs[0];
diag("several packages in build/, testing the newest: $deb") if @debs > 1;

my $before = status_of($PKG);
plan skip_all => "$PKG is on this machine already ($before): the test "
               . 'installs and purges it; apt-get purge it first'
    if $before ne 'not-installed';

my ($rc, $out) = nginx_t();
plan skip_all => "the system's nginx -t fails before the test:\n$out"
    if $rc != 0;

if (open my $fh, '<', '/run/nginx.pid') {
    my ($pid) = (<$fh> // '') =~ /(\d+)/;
    diag("the system's nginx runs (pid $pid): the package's nginx-reload "
         . 'trigger reloads it on install and purge')
        if $pid && kill 0, $pid;
}

my $installed;

# an interrupted run still purges (END runs on exit, not on a signal's death)
$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub { diag("SIG$_[0]: purging"); exit 1 };

END {
    # never leave the package behind, whatever failed
    if ($installed) {
        local $?;    # the exit code stays the test's
        system("$APT purge $PKG >/dev/null 2>&1");
    }
}

###############################################################################

# the package as built

my $depends = `dpkg-deb -f '$deb' Depends`;
my ($abi) = $depends =~ /\b(nginx-abi-[\w.+~-]+)/;

ok($abi, "depends on the nginx ABI (${\($abi // 'none')})");
ok($abi && grep({ /(^|,\s*)\Q$abi\E(\s|,|$)/ }
                `dpkg-query -W -f '\${Provides}\\n' 2>/dev/null`),
   'which the installed nginx provides');
like($depends, qr/\blibcurl4\b/, 'and on libcurl4 (shlibs)');

# install

$out = `$APT install --no-install-recommends '$deb' 2>&1`;
$installed = 1;
is($? >> 8, 0, 'apt-get install ./build/' . ($deb =~ s{.*/}{}r))
    or diag($out);
is(status_of($PKG), 'installed ' . `dpkg-deb -f '$deb' Version` =~ s/\s+//gr,
   'dpkg: installed, the version built');

ok(-f $SO, "the module in $SO");

# state= (README, Restart): a directory the workers (www-data) write in

my $STATE = '/var/lib/nginx/stockprice';
my @st = stat $STATE;
my ($www) = (getpwnam('www-data'))[2];

ok(-d $STATE && defined $www && $st[4] == $www && ($st[2] & 07777) == 0750,
   "$STATE: www-data's, 0750")
    or diag(sprintf('uid %s (www-data %s), mode %o', $st[4] // '-',
                    $www // '-', ($st[2] // 0) & 07777));
is(slurp($AVAIL), "load_module modules/ngx_http_stockprice_module.so;\n",
   "the load file in $AVAIL");
is(readlink($ENABLED), $AVAIL, "enabled: $ENABLED links to it");

($rc, $out) = nginx_t();
is($rc, 0, "the system's nginx -t passes with the module loaded")
    or diag($out);

my $dump = `$NGINX -T 2>/dev/null`;
like($dump, qr/^# configuration file \Q$ENABLED\E:\n
               load_module\ modules\/ngx_http_stockprice_module\.so;/mx,
     'the system configuration loads it through modules-enabled');

my @files = split /\n/, `dpkg -L $PKG`;
my @dirs = grep { -d $_ && !-l $_ } @files;
my @plain = grep { !(-d $_ && !-l $_) } @files;

ok((grep { $_ eq "$EXAMPLES/stockprice.conf" } @files)
   && (grep { $_ eq "$EXAMPLES/stockprice.credentials" } @files),
   'the example configuration and credentials in ' . $EXAMPLES);

###############################################################################

# the example, served by the system binary with the package's load file

my $example = slurp("$EXAMPLES/stockprice.conf");

unlike(join("\n", grep { !/^\s*#/ } split /\n/, $example),
       qr/\bload_module\b/, 'the example has no load_module');

# README's "Getting started" copies it into /etc/nginx/conf.d: the system's
# nginx.conf with the example included beside conf.d (a copy, /etc stays
# as it is; nginx -t binds no port)

SKIP: {
    my $system = slurp('/etc/nginx/nginx.conf') // '';

    skip 'the system nginx.conf includes no /etc/nginx/conf.d/*.conf', 1
        unless $system =~ s{^(\s*include\s+/etc/nginx/conf\.d/\*\.conf;)}
                           {$1\n    include $EXAMPLES/stockprice.conf;}m;

    my $c = StockTest->new;
    my $f = $c->write_file('nginx.conf', $system);
    my $o = `$NGINX -t -c $f 2>&1`;

    is($? >> 8, 0, "the system's nginx -t with the example in its http "
                   . 'block, unchanged') or diag($o);
}

serve('the example', sub { $_[0] });

# the credentials example with the auth lines of the example's comment

serve('the example with auth', sub {
    my ($conf, $t) = @_;

    my $cred = $t->write_file('stockprice.credentials',
                              slurp("$EXAMPLES/stockprice.credentials"));
    chmod 0600, $cred;

    my $port = $t->port(0);
    $conf =~ s{^(stockprice_poll\s+\S+)}
              {$1 auth=http://127.0.0.1:$port/demo/auth credentials=$cred}m
        or return undef;
    $conf =~ s{^(\s*stockprice_demo_feed\b[^;#]*);}{$1 credentials=$cred;}m
        or return undef;

    return $conf;
}, sub {
    my ($t, $st) = @_;

    ok($st->{authenticated} && $st->{authCalls} >= 1,
       'the example with auth: authenticated with the example credentials');

    my $r = $t->get('/demo/prices');
    is($r->{status}, 401, 'the example with auth: the feed wants a token');
});

# the state= line of the example's comment, with the user of Debian's
# nginx.conf: the workers write the file there, a restart serves it

serve('the example with state=', sub {
    my ($conf) = @_;
    my ($line) = $example =~ /^#\s+(state=\S+)\s*$/m or return undef;
    $conf =~ s{^(stockprice_poll\s+\S+)}{$1 $line}m or return undef;
    return $conf;
}, sub {
    my ($t) = @_;
    my $file = "$STATE/stocks.state";

    ok($t->wait_for(sub { -s $file }, 5),
       "the example with state=: $file written");
    is((stat $file)[4], $www, 'the example with state=: by www-data');

    $t->stop('TERM');
    $t->run;

    my $st = $t->status('/api/StockPrice.status');
    ok(($st->{restored} // 0) >= 3,
       'the example with state=: restarted, restored '
       . ($st->{restored} // 'none'));
}, "user www-data;\n");

###############################################################################

# purge

$out = `$APT purge $PKG 2>&1`;
is($? >> 8, 0, "apt-get purge $PKG") or diag($out);
$installed = 0 if status_of($PKG) eq 'not-installed';

is(status_of($PKG), 'not-installed', 'dpkg -s: not installed');
system("dpkg -s $PKG >/dev/null 2>&1");
isnt($? >> 8, 0, 'dpkg -s fails for it');

is(join(' ', grep { -e $_ || -l $_ } @plain), '',
   'no file of its dpkg -L is left (' . @plain . ' files)');

# a directory of the list that is still there belongs to another package

my @left = grep { $_ ne '/.' && -d $_ } @dirs;
my %owned;

for (`dpkg -S @left 2>/dev/null`) {
    $owned{$1} = 1 if /^.+?: (\/.*)$/;
}

is(join(' ', grep { !$owned{$_} } @left), '',
   'no directory of it is left that no other package owns');
ok(!-e $STATE, "$STATE is gone, with the state file in it");
ok(!-e $ENABLED && !-l $ENABLED && !-l "$ENABLED.removed",
   'no modules-enabled link');

($rc, $out) = nginx_t();
is($rc, 0, "the system's nginx -t passes after the purge") or diag($out);
unlike(scalar `$NGINX -T 2>/dev/null`, qr/ngx_http_stockprice_module/,
       'and loads the module no more');

done_testing;

###############################################################################

# serve($name, $rewrite, $more): a nginx of its own whose http block
# includes the example as $rewrite makes it of the example with its port
# replaced; the prices after the first refresh; $more->($t, $status)
# for further checks; $main, lines for the main context before the rest

sub serve {
    my ($name, $rewrite, $more, $main) = @_;

    my $t = StockTest->new;
    my $d = $t->dir;
    my $port = $t->port(0);

    # the load file's path is relative to nginx's prefix: the system's,
    # /usr/share/nginx, has modules -> /usr/lib/nginx/modules, this one
    # the same link
    symlink '/usr/lib/nginx/modules', "$d/modules" or die "symlink: $!";

    (my $conf = $example) =~ s/\b8080\b/$port/g;
    $conf = $rewrite->($conf, $t);

    unless (defined $conf) {
        fail("$name: the example has the lines to change");
        return;
    }

    $t->write_file('stockprice.conf', $conf);
    $t->write_config(($main // '') . <<'EOF');
%%BASE%%
include /etc/nginx/modules-enabled/*.conf;
events { worker_connections 64; }
http {
    %%TEMPS%%
    access_log off;
    include %%TESTDIR%%/stockprice.conf;
}
EOF

    my ($trc, $tout) = $t->test_config;
    is($trc, 0, "$name: nginx -t") or diag($tout);

    unless (eval { $t->run; 1 }) {
        fail("$name: nginx starts: $@");
        $t->cleanup;
        return;
    }

    my $list;
    my $start = time;

    $t->wait_for(sub {
        my $r = $t->get('/api/StockPrice');
        return 0 unless $r->{status} == 200;
        $list = eval { decode_json($r->{content}) };
        return ref $list eq 'ARRAY' && @$list;
    }, 10);

    is(ref $list eq 'ARRAY'
       && join(',', sort map { $_->{symbol} // '?' } @$list),
       'AAPL,MSFT,SAP', "$name: GET /api/StockPrice, the demo feed's prices"
                        . sprintf(' (%.1f s)', time - $start));
    ok(!grep({ !defined $_->{price} } @{ $list // [] }),
       "$name: each with its price");

    my $r = $t->get('/api/StockPrice', 'Accept-Encoding' => 'gzip');
    is($r->{headers}{'content-encoding'} // '', 'gzip',
       "$name: gzip=on");

    my $st = $t->status('/api/StockPrice.status');
    ok(($st->{refreshes} // 0) >= 1 && exists $st->{lastError}
       && !defined $st->{lastError}, "$name: status, refreshed, no error");

    $more->($t, $st) if $more;

    $t->done;
}


# (exit code, output) of the system's nginx -t

sub nginx_t {
    my $o = `$NGINX -t 2>&1`;
    return ($? >> 8, $o);
}


# "installed VERSION", "not-installed" or dpkg's state (config-files, ...)

sub status_of {
    my ($p) = @_;

    my $s = `dpkg-query -W -f '\${db:Status-Abbrev} \${db:Status-Status} \${Version}' $p 2>/dev/null`;
    return 'not-installed' if $? || $s eq '' || $s =~ /^\S+\s+not-installed/;
    return "installed $1" if $s =~ /^ii\s+installed (\S+)/;
    return $s;
}


sub slurp {
    my ($f) = @_;

    open my $fh, '<', $f or return undef;
    local $/;
    my $c = <$fh>;
    close $fh;
    return $c;
}
