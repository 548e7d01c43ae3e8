#!/usr/bin/perl
# make deb: the package is built (packaging/build-deb, from build/), its
# control fields and files are those of a Debian libnginx-mod-http-*
# (the nginx ABI of the nginx-dev it was built against, the shared
# libraries), then it is installed with dpkg -i into this machine's
# nginx: the packaged modules-enabled link loads the module for a real
# nginx that splits a request, canary-ctl and canary-sidecar run from
# /usr/bin, and dpkg -r / dpkg -P leave nothing behind.  Installing
# needs root and a machine where the package is not installed already;
# in CI (CANARY_NO_SKIP) that part must run.  The package is purged in
# END whatever happened, and nginx services are left alone: the
# maintainer scripts reload nginx only if it runs (nginx's trigger).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use CanaryTest;

my $ROOT = $CanaryTest::ROOT;
my $PKG = 'libnginx-mod-http-canary';
my $NGINX_SRC = $ENV{NGINX_SRC} || '/usr/share/nginx/src';
my $MODS = '/etc/nginx/modules-enabled';
my $LINK = "$MODS/50-mod-http-canary.conf";
my $AVAIL = '/usr/share/nginx/modules-available/mod-http-canary.conf';
my $SO = '/usr/lib/nginx/modules/ngx_http_canary_module.so';
my $UNIT = '/lib/systemd/system/canary-sidecar@.service';
my $DOC = "/usr/share/doc/$PKG";

sub run {
    my (@cmd) = @_;

    my $out = qx{@cmd 2>&1};

    return ($? >> 8, $out);
}

sub sh_quote { my $s = shift; $s =~ s/'/'\\''/g; return "'$s'" }

for my $tool (qw(dpkg-deb dpkg-shlibdeps)) {
    plan skip_all => "$tool not found (dpkg-dev)"
        unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
}

# ---- the package ---------------------------------------------------------

my $out_dir = tempdir('package-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my ($rc, $out) = run("cd " . sh_quote($ROOT) . " && OUT=" . sh_quote($out_dir)
                     . " sh packaging/build-deb");
is $rc, 0, 'packaging/build-deb builds the package' or diag $out;
my ($deb) = $out =~ m{^(\S+\.deb)$}m;
ok $deb && -f $deb, "the .deb is where it says: " . ($deb // '(none)')
    or BAIL_OUT("no package");

my %f;
for my $field (qw(Package Version Architecture Depends Section)) {
    (undef, $f{$field}) = run('dpkg-deb', '-f', $deb, $field);
    chomp $f{$field};
}
is $f{Package}, $PKG, "Package: $PKG";
is $f{Section}, 'httpd', 'Section: httpd, as Debian\'s nginx modules';
is $f{Architecture}, scalar(qx{dpkg --print-architecture} =~ s/\s+//r),
    'Architecture: this machine\'s';

# the ABI: what dh_nginx reads, and what the installed nginx provides
my ($abi) = do {
    open my $fh, '<', "$NGINX_SRC/debian/libnginx-mod.abisubstvars"
        or die "$NGINX_SRC/debian/libnginx-mod.abisubstvars: $!";
    map { /^nginx:abi=(\S+)/ ? $1 : () } <$fh>;
};
my @deps = split /\s*,\s*/, $f{Depends};
ok((grep { $_ eq $abi } @deps), "Depends on the exact nginx ABI $abi")
    or diag "Depends: $f{Depends}";
like qx{dpkg-query -W -f='\${Provides}' nginx 2>/dev/null},
    qr/(?:^|[ ,])\Q$abi\E(?:,|$)/,
    "the installed nginx provides $abi (the module was built for it)";
for my $lib (qw(libhiredis0.14 libcurl4 libjansson4 libmicrohttpd12
                zlib1g libssl3 libc6 redis-tools))
{
    ok((grep { /^\Q$lib\E(?:\s|$)/ } @deps), "Depends: $lib")
        or diag "Depends: $f{Depends}";
}

my %files;
for (split /\n/, scalar qx{dpkg-deb -c $deb}) {
    my @w = split ' ', $_, 6;
    (my $path = $w[5]) =~ s{^\.}{};
    $path =~ s{ -> .*}{};
    $files{$path} = $w[0];
}
for my $p ($SO, $AVAIL, '/usr/bin/canary-ctl', '/usr/bin/canary-sidecar',
           $UNIT, "$DOC/copyright", "$DOC/changelog.Debian.gz",
           "$DOC/README.md.gz", "$DOC/examples/canary.env.example",
           "$DOC/examples/plan-default.json",
           "$DOC/examples/redis-sidecar.conf")
{
    ok $files{$p}, "ships $p";
}
like $files{'/usr/bin/canary-sidecar'} // '', qr/^-rwxr-xr-x/,
    'canary-sidecar is executable';
ok !(grep { m{^/etc/nginx/} } keys %files),
    'no file under /etc/nginx: the link is postinst\'s, as dh_nginx does';

sub deb_file {
    my ($path) = @_;

    return scalar qx{dpkg-deb --fsys-tarfile $deb | tar -xO .$path};
}

is deb_file($AVAIL), "load_module $SO;\n",
    'modules-available/mod-http-canary.conf: the load_module line';
my $unit = deb_file($UNIT);
like $unit, qr{^EnvironmentFile=/etc/canary/%i\.env$}m,
    'the unit template reads /etc/canary/SPLIT.env';
like $unit,
    qr{^ExecStart=/usr/bin/canary-sidecar --split %i \$CANARY_SIDECAR_OPTS$}m,
    'and runs /usr/bin/canary-sidecar for split %i';
like $unit, qr{^Documentation=file://$DOC/README\.md\.gz$}m,
    'its Documentation= is the packaged README';
like deb_file("$DOC/examples/canary.env.example"),
    qr/^CANARY_SIDECAR_OPTS="--redis \S+/m,
    'the example env file sets CANARY_SIDECAR_OPTS';
is deb_file($SO),
    do { local (@ARGV, $/) = "$ROOT/build/ngx_http_canary_module.so"; <> },
    'the packaged module is build/ngx_http_canary_module.so';

# the unit's command with a hostile env file: CANARY_SIDECAR_OPTS naming
# another split must not make canary-sidecar@api roll out that split
{
    my ($exec) = $unit =~ /^ExecStart=(.*)$/m;
    my @argv = map { $_ eq '$CANARY_SIDECAR_OPTS'
                     ? qw(--redis 127.0.0.1:1 --split web) : $_ }
               map { s/%i/api/gr } split ' ', $exec;
    $argv[0] = "$ROOT/build/canary-sidecar";
    ($rc, $out) = run('timeout', '10', map { sh_quote($_) } @argv);
    is $rc, 2, 'canary-sidecar@api with --split web in its env file: '
        . 'exit 2 (bad options, not restarted)' or diag $out;
    like $out, qr/--split.*\bapi\b.*\bweb\b|--split.*\bweb\b.*\bapi\b/,
        'naming both splits' or diag $out;
}

# the example env file, as a reader uses it for split api: its options
# are the sidecar's (a renamed option would exit 2 here), and what it
# writes is inside the unit's StateDirectory=, the only directory
# systemd creates for the dynamic user and lets it write (a
# subdirectory of it does not exist and root cannot make it the
# dynamic user's)
{
    my $example = deb_file("$DOC/examples/canary.env.example");
    my ($state) = $unit =~ /^StateDirectory=(\S+)$/m;
    ok $state, "the unit has one StateDirectory= ($state)";
    my $writable = '/var/lib/' . (($state // '') =~ s/%i/api/gr);
    (my $text = $example) =~ s/SPLIT/api/g;
    my @writes;
    while ($text =~ /--(receipts|evidence-dir)\s+(\S+)/g) {
        my ($opt, $path) = ($1, $2);
        $path =~ s{/[^/]+$}{} if $opt eq 'receipts';
        push @writes, "--$opt $path";
    }
    ok @writes >= 2, 'it shows --receipts and --evidence-dir';
    is "@{[ grep { !m{ \Q$writable\E$} } @writes ]}", '',
        "each writes into $writable itself";

    my ($opts) = $example =~ /^CANARY_SIDECAR_OPTS="([^"]*)"$/m;
    my $states = tempdir('state-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $listen = do {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Listen => 1)
            or die "listen: $!";
        $s->sockport;
    };
    my @argv = map { s{^/etc/canary/api\.plan\.json$}
                      {$ROOT/conf-examples/plan-default.json}r
                     =~ s{^/var/lib/canary/api}{$states}r
                     =~ s{^127\.0\.0\.1:6379$}{127.0.0.1:1}r
                     =~ s{^127\.0\.0\.1:9465$}{127.0.0.1:$listen}r }
               split ' ', $opts // '';
    # it runs (options and plan taken) once it waits for its Redis
    my $pid = open my $fh, '-|',
        join(' ', 'exec timeout 30', map({ sh_quote($_) }
             "$ROOT/build/canary-sidecar", '--split', 'api', @argv,
             '--dry-run'), '2>&1')
        or die "canary-sidecar: $!";
    $out = '';
    while (my $line = <$fh>) {
        $out .= $line;
        last if $line =~ /unreachable.*retrying/;
    }
    kill 'TERM', $pid;
    close $fh;
    like $out, qr/api: canary-sidecar .*plan \S+plan-default\.json/,
        'its CANARY_SIDECAR_OPTS are options the sidecar takes, and it '
        . 'runs with the packaged plan' or diag $out;
}

my $postinst = qx{dpkg-deb -I $deb postinst};
like $postinst, qr{ln -sf /usr/share/nginx/modules-available/\$from},
    'postinst links the module';
like $postinst, qr{dpkg-trigger --no-await nginx-reload},
    'postinst reloads nginx through its trigger (only if it runs)';

# ---- the ABI is that of the nginx the module was compiled against -------

# make configures build/nginx from NGINX_SRC once; a later make with
# another NGINX_SRC (or back to the default) reuses that copy.  A module
# built against another nginx (here: its headers say 1.25.3) must not be
# packaged as nginx-dev's ABI, which the installed nginx would accept
# and then refuse to load ("module ... version 1025003 instead of ...").
{
    my $b = tempdir('other-nginx-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$b/nginx" or die "$b/nginx: $!";
    system('cp', '-a', "$NGINX_SRC/src", "$b/nginx/src") == 0 or die;
    system('cp', "$ROOT/build/ngx_http_canary_module.so",
           "$ROOT/build/canary-sidecar", $b) == 0 or die;
    my $h = "$b/nginx/src/core/nginx.h";
    my $text = do { local (@ARGV, $/) = $h; <> };
    $text =~ s/^(#define NGINX_VERSION\s+)"[^"]+"/$1"1.25.3"/m or die;
    open my $fh, '>', $h or die "$h: $!";
    print $fh $text;
    close $fh;

    my ($rc, $out) = run("cd " . sh_quote($ROOT) . " && BUILD=" . sh_quote($b)
                         . " OUT=" . sh_quote($b) . " sh packaging/build-deb");
    isnt $rc, 0, 'build-deb refuses a module built against another nginx '
        . 'source than NGINX_SRC' or diag $out;
    like $out, qr/\Q$NGINX_SRC\E.*1\.25\.3|1\.25\.3.*\Q$NGINX_SRC\E/s,
        'and names both' or diag $out;
    my @debs = glob("$b/*.deb");
    is "@debs", '', 'no package written';
}

# README's "dpkg -i build/libnginx-mod-http-canary_*.deb" after a second
# make deb (a pull, a local change: "+dirty" sorts before the clean
# version of the same commit) must match that package only, not the old
# one too (dpkg unpacks each in turn and keeps the last)
{
    my $b = tempdir('rebuild-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$b/nginx" or die "$b/nginx: $!";
    system('cp', '-a', "$NGINX_SRC/src", "$b/nginx/src") == 0 or die;
    system('cp', "$ROOT/build/ngx_http_canary_module.so",
           "$ROOT/build/canary-sidecar", $b) == 0 or die;
    my $old = "$b/${PKG}_0~git20200101000000.0000000_$f{Architecture}.deb";
    system('cp', $deb, $old) == 0 or die;
    my ($rc, $out) = run("cd " . sh_quote($ROOT) . " && BUILD=" . sh_quote($b)
                         . " VERSION=0~git20200101000000.0000000+dirty"
                         . " sh packaging/build-deb");
    is $rc, 0, 'build-deb again in the same build directory' or diag $out;
    my @debs = map { s{.*/}{}r } glob("$b/${PKG}_*.deb");
    is "@debs", "${PKG}_0~git20200101000000.0000000+dirty_"
        . "$f{Architecture}.deb", 'only the new package is in it';
}

# ---- make install: the same tree under another PREFIX ---------------------

{
    my $d = tempdir('install-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    ($rc, $out) = run("cd " . sh_quote($ROOT) . " && DESTDIR=" . sh_quote($d)
                      . " PREFIX=/usr/local MODULESDIR=/usr/lib/nginx/modules"
                      . " sh packaging/install");
    is $rc, 0, 'packaging/install (make install) DESTDIR=... PREFIX=/usr/local'
        or diag $out;
    for my $f ('/usr/local/bin/canary-sidecar', '/usr/local/bin/canary-ctl',
               $SO,
               '/usr/local/share/nginx/modules-available/mod-http-canary.conf',
               "/usr/local/share/doc/$PKG/examples/canary.env.example")
    {
        ok -f "$d$f", "installs $f";
    }
    my $u = do {
        local (@ARGV, $/) =
            "$d/usr/local/lib/systemd/system/canary-sidecar\@.service";
        <>;
    };
    like $u // '', qr{^ExecStart=/usr/local/bin/canary-sidecar }m,
        'its unit runs the sidecar from PREFIX/bin';
}

# DESTDIR with a space, through make; PREFIX and MODULESDIR are written
# into the unit's ExecStart= and the load_module line, which a relative
# path (or a space, which ExecStart= splits at) would break
{
    my $d = tempdir('install-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    ($rc, $out) = run("cd " . sh_quote($ROOT) . " && make -s install"
                      . " DESTDIR=" . sh_quote("$d/staging root")
                      . " PREFIX=/opt/canary");
    is $rc, 0, 'make install DESTDIR="... staging root" PREFIX=/opt/canary'
        or diag $out;
    ok -x "$d/staging root/opt/canary/bin/canary-sidecar",
        'installs under the DESTDIR with a space';

    for my $bad (['PREFIX', 'usr/local'], ['PREFIX', '/opt/my canary'],
                 ['MODULESDIR', 'lib/nginx/modules'])
    {
        my ($var, $value) = @$bad;
        ($rc, $out) = run("cd " . sh_quote($ROOT) . " && DESTDIR="
                          . sh_quote($d) . " $var=" . sh_quote($value)
                          . " sh packaging/install");
        isnt $rc, 0, "packaging/install refuses $var=$value" or diag $out;
        like $out, qr/\Q$var\E.*\Q$value\E/, 'naming it' or diag $out;
    }
}

# ---- installed into this machine's nginx ---------------------------------

my $installed = 0;
my $OWN = "$MODS/10-local-canary-test.conf";

sub pkg_status {
    my $s = qx{dpkg-query -W -f='\${Status}' $PKG 2>/dev/null};
    return $s;
}

# dpkg takes its lock; another apt or dpkg run (install-deps) may hold
# it for a while
sub dpkg {
    my (@args) = @_;

    my $deadline = time + 120;
    for (;;) {
        my ($rc, $out) = run('dpkg', @args);
        return ($rc, $out) if $rc == 0 || $out !~ /lock/i
                              || time > $deadline;
        sleep 1;
    }
}

END {
    local $?;    # the test's exit status is the test's

    unlink $OWN if $installed;

    # any state dpkg may leave it in: "install ok unpacked" too (dpkg -i
    # whose dependencies failed), not only installed, half-*, config-files
    my $status = pkg_status();
    if ($installed && $status =~ /\S/ && $status !~ /not-installed$/) {
        my ($rc, $out) = run('dpkg', '-P', $PKG);
        print STDERR "# END: dpkg -P $PKG: exit $rc\n$out" if $rc;
    }
}

SKIP: {
    skip "dpkg -i needs root", 1 if $> != 0;
    skip "$PKG is already installed here: not touching it", 1
        if pkg_status() =~ /ok installed|config-files/;
    skip "nginx (the package providing $abi) is not installed", 1
        unless qx{dpkg-query -W -f='\${Status}' nginx 2>/dev/null}
               =~ /ok installed/;

    $installed = 1;
    ($rc, $out) = dpkg('-i', $deb);
    is $rc, 0, 'dpkg -i installs it' or diag $out;
    like pkg_status(), qr/install ok installed/, 'dpkg says installed';

    ok -f $SO, "the module is in $SO";
    is readlink($LINK), $AVAIL, "$LINK links modules-available";

    for my $bin (qw(canary-ctl canary-sidecar)) {
        ($rc, $out) = run("/usr/bin/$bin", '--help');
        is $rc, 0, "/usr/bin/$bin --help runs" or diag $out;
        like $out, qr/\Q$bin\E|usage/i, "and says what it is";
    }

    # the packaged link, as Debian's nginx.conf includes it (its
    # modules-enabled/*.conf; the other modules there are relative to
    # nginx's prefix, not this test's)
    my $t = CanaryTest->new;
    my $p = $t->prefix;
    my $port = $t->port('http');
    my $user = $> == 0 ? 'user nobody nogroup;' : '';
    my $conf = <<"EOF";
include $MODS/*canary*.conf;

$user
worker_processes 1;
master_process on;
daemon off;
error_log $p/error.log info;
pid $p/nginx.pid;

events { worker_connections 64; }

http {
    access_log off;
    client_body_temp_path $p/tmp/client_body;
    proxy_temp_path       $p/tmp/proxy;
    fastcgi_temp_path     $p/tmp/fastcgi;
    uwsgi_temp_path       $p/tmp/uwsgi;
    scgi_temp_path        $p/tmp/scgi;

    canary_zone canary 1m;
    canary_split app {
        stable stable_up; canary canary_up; weight 0;
        override X-Canary-Opt-In true canary;
    }
${\ $t->origins }
    server {
        listen 127.0.0.1:$port;
        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }
    }
}
EOF
    $t->write_conf(undef, raw => $conf);
    my ($ok, $t_out) = $t->nginx_t;
    ok $ok, 'nginx -t: the packaged modules-enabled link loads the module'
        or diag $t_out;

    $t->start;
    my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'acme' });
    is $d->{side}, 'stable', 'that nginx splits: weight 0 sends acme to stable';
    $d = $t->route($port, '/', { 'X-Tenant-Id' => 'acme',
                                  'X-Canary-Opt-In' => 'true' });
    is $d->{side}, 'canary', 'and the opt-in header to canary';
    $t->stop;

    SKIP: {
        my ($sa) = grep { -x "$_/systemd-analyze" } split /:/, $ENV{PATH};
        # not optional: CI installs systemd (install-deps), else the
        # unit would never be checked there
        skip "systemd-analyze not found (systemd)", 1 unless $sa;

        # an instance, as systemctl would start it; without a running
        # systemd the missing targets are not the unit's fault
        ($rc, $out) = run('systemd-analyze', 'verify',
                          'canary-sidecar@api.service');
        my @bad = grep { !/target not found|Failed to create .*\/start|
                           Failed to load|No such file or directory.*target/x }
                  split /\n/, $out;
        is "@bad", '', 'systemd-analyze verify canary-sidecar@api.service'
            or diag $out;
        note "systemd-analyze verify: $out";
    }

    ($rc, $out) = dpkg('-r', $PKG);
    is $rc, 0, 'dpkg -r removes it' or diag $out;
    for my $path ($SO, $AVAIL, '/usr/bin/canary-ctl',
                  '/usr/bin/canary-sidecar', $UNIT)
    {
        ok !-e $path, "$path is gone";
    }
    ok !-e $LINK && !-l $LINK, "$LINK is gone (nginx loads nothing of it)";
    my @left = glob("$MODS/*canary*.conf");
    is "@left", '', 'nothing in modules-enabled/*.conf names canary';

    ($ok, $t_out) = $t->nginx_t;
    ok !$ok, 'nginx -t with the same configuration now fails...';
    like $t_out, qr/unknown directive "canary_zone"/,
        '... as the module is not loaded';

    ($rc, $out) = dpkg('-P', $PKG);
    is $rc, 0, 'dpkg -P purges it' or diag $out;
    @left = glob("$MODS/*canary*");
    is "@left", '', 'no modules-enabled entry at all after purge '
        . '(remove keeps a .removed link, as dh_nginx does)';
    ok !-e $DOC, "$DOC is gone";
    is pkg_status(), '', 'dpkg knows no more of it';

    # an administrator who loads the module already (README's first
    # configuration before the package: load_module at the top of their
    # nginx.conf; here a modules-enabled file of their own): the package
    # must not load it a second time, which nginx refuses
    open my $fh, '>', $OWN or die "$OWN: $!";
    print $fh "load_module $SO;\n";
    close $fh;
    ($rc, $out) = dpkg('-i', $deb);
    is $rc, 0, "dpkg -i with the administrator's own $OWN" or diag $out;
    ok !-e $LINK && !-l $LINK, 'no second load_module link';
    like $out, qr/\Q$OWN\E loads the module already/,
        'postinst says which file loads it';
    ($ok, $t_out) = $t->nginx_t;
    ok $ok, 'nginx -t: the module loaded once' or diag $t_out;
    ($rc, $out) = dpkg('-P', $PKG);
    is $rc, 0, 'dpkg -P' or diag $out;
    is readlink($OWN) // (-f $OWN ? 'a file' : 'gone'), 'a file',
        "the administrator's $OWN is left alone";
    unlink $OWN;
}

done_testing;
