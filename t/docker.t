#!/usr/bin/perl

# Story: the Docker image is built from this repository by someone who has
# never run our tests, on a machine we never see; no Docker engine runs
# here, so everything about the image that can be known without building
# it is checked here instead.  The Dockerfile passes a Dockerfile linter
# (dockerfile-utils, pinned in tools/package-lock.json) and the usual
# good practices; every file it copies is in the repository and in the
# build context; the nginx it downloads is the version the module is
# built and tested against here; the runtime stage installs the package
# of every shared library the module and the sidecar link; the paths of
# configure, docker/nginx.conf and the COPY lines agree; and the image's
# default configuration, laid out as the image lays it out, passes
# "nginx -t" with the module, starts, answers the HEALTHCHECK's own
# command and routes a tenant.
#
# CANARY_NGINX_TARBALL=/path/to/nginx-1.22.1.tar.gz also rehearses the
# build stage on this machine: the tarball's SHA-256 must be NGINX_SHA256,
# the Dockerfile's own RUN lines build nginx, the module and the sidecar,
# and the story above runs on what they built instead of on Debian's
# nginx and build/.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Cwd qw(abs_path);
use File::Basename qw(dirname basename);
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP;
use POSIX ();
use Test::More;
use CanaryTest;

my $ROOT = $CanaryTest::ROOT;
my $NGINX_SRC = $ENV{NGINX_SRC} || '/usr/share/nginx/src';

my @df = parse_dockerfile("$ROOT/Dockerfile");
my @stages = stages(@df);
my $runtime = $stages[-1];
my %arg = global_args(@df);


# ---- the linter ------------------------------------------------------------

SKIP: {
    my $lint = "$ROOT/tools/node_modules/.bin/dockerfile-utils";

    if (!-x $lint) {
        # scripts/install-deps.sh installs npm: without it, a failure
        if (!have('npm')) {
            fail('npm is not installed: cannot install the Dockerfile '
                 . 'linter (npm ci --prefix tools)');
            skip 'no linter', 1;
        }

        my ($rc, $out) = run('npm', 'ci', '--prefix', "$ROOT/tools",
                             '--no-audit', '--no-fund');
        is($rc, 0, 'npm ci --prefix tools installs the pinned linter')
            or diag($out);
    }

    # the linter that runs is the one tools/package-lock.json pins, not
    # whatever an earlier install left in tools/node_modules
    my ($pinned) = slurp("$ROOT/tools/package-lock.json")
        =~ m{"node_modules/dockerfile-utils":\s*\{\s*"version":\s*"([^"]+)"};
    my ($rc, $version) = run($lint, '--version');
    chomp $version;
    note($version);

    $pinned //= 'none';
    like($version, qr/^dockerfile-utils version \Q$pinned\E\b/,
         "the linter is the pinned dockerfile-utils $pinned");

    my $out;
    ($rc, $out) = run($lint, 'lint', '--json', "$ROOT/Dockerfile");
    my $diags = eval { decode_json($out) };

    ok($rc == 0 && $diags && !@$diags,
       "$version: no error or warning in the Dockerfile")
        or diag($diags
                ? join("\n", map { "line " . ($_->{range}{start}{line} + 1)
                                   . ": $_->{severity}: $_->{message}" }
                              @$diags)
                : $out);
}


# ---- good practices the linter does not know -------------------------------

for my $s (@stages) {
    my $from = $s->{from};
    like($from, qr/^[^:\s]+:[\w.-]+$/, "FROM $from: a tagged image");
    unlike($from, qr/:latest$/, "FROM $from: not :latest");
}

is(scalar @stages, 2, 'two stages: build and runtime');
is($stages[0]{name}, 'build', 'the first stage is named build');

for my $i (grep { $_->{cmd} eq 'RUN' } @df) {
    my $run = $i->{args};
    my $where = "RUN at line $i->{line}";

    if ($run =~ /apt-get\s+(?:-\S+\s+)*install/) {
        like($run, qr/apt-get update\b/, "$where: apt-get update first");
        like($run, qr/--no-install-recommends/,
             "$where: --no-install-recommends");
        like($run, qr/install\s+-y\b|\s-y\s/, "$where: -y");
        like($run, qr{rm -rf /var/lib/apt/lists/\*},
             "$where: removes the apt lists in the same layer");
    }

    if ($run =~ /\|/ && $run !~ /\|\|/) {
        ok($i->{shell} && $i->{shell} =~ /pipefail/,
           "$where: a pipe runs under SHELL with -o pipefail");
    }

    unlike($run, qr/(?:^|&&|;)\s*cd\s/, "$where: no cd (WORKDIR, make -C)");
}

ok(!grep({ $_->{cmd} eq 'ADD' } @df), 'COPY, never ADD');
ok(!grep({ $_->{cmd} eq 'MAINTAINER' } @df), 'no MAINTAINER');

for my $w (grep { $_->{cmd} eq 'WORKDIR' } @df) {
    like($w->{args}, qr{^/}, "WORKDIR $w->{args} is absolute");
}

my ($user) = map { $_->{args} } grep { $_->{cmd} eq 'USER' }
                                      @{$runtime->{instructions}};
ok(defined $user && $user !~ /^(?:root|0)(?::|$)/,
   'the runtime stage runs as a non-root user (' . ($user // 'none') . ')');

my @hc = grep { $_->{cmd} eq 'HEALTHCHECK' } @df;
is(scalar @hc, 1, 'one HEALTHCHECK');

my @cmd = grep { $_->{cmd} eq 'CMD' } @{$runtime->{instructions}};
is(scalar @cmd, 1, 'one CMD in the runtime stage');
my $cmd = @cmd ? exec_form($cmd[0]{args}) : [];
is_deeply($cmd, ['nginx', '-g', 'daemon off;'],
          'CMD: nginx in the foreground, its compiled-in paths');


# ---- the nginx version -----------------------------------------------------

my $tested = nginx_h_version("$NGINX_SRC/src/core/nginx.h");

SKIP: {
    skip "no nginx source at $NGINX_SRC (install nginx-dev)", 1
        unless defined $tested;

    is($arg{NGINX_VERSION}, $tested,
       "NGINX_VERSION is the version the module is tested against "
       . "($NGINX_SRC)");
}

like($arg{NGINX_SHA256} // '', qr/^[0-9a-f]{64}$/,
     'NGINX_SHA256 is a SHA-256');

my ($download) = grep { $_->{cmd} eq 'RUN' && $_->{args} =~ /nginx\.org/ }
                      @{$stages[0]{instructions}};
ok($download, 'the build stage downloads nginx from nginx.org');
like($download->{args} // '',
     qr{https://nginx\.org/download/nginx-\$\{NGINX_VERSION\}\.tar\.gz},
     'the release tarball of NGINX_VERSION, over https');
like($download->{args} // '',
     qr/\$\{NGINX_SHA256\}.*sha256sum -c/,
     'checked against NGINX_SHA256 before it is unpacked');


# ---- COPY sources ----------------------------------------------------------

my @ignore = dockerignore("$ROOT/.dockerignore");
my %stage_names = map { $_->{name} ? ($_->{name} => 1) : () } @stages;

for my $c (grep { $_->{cmd} eq 'COPY' } @df) {
    my ($flags, $srcs, $dest) = copy_args($c->{args});

    if (defined $flags->{from}) {
        ok($stage_names{$flags->{from}},
           "COPY --from=$flags->{from}: a stage of this Dockerfile");
        next;
    }

    for my $src (@$srcs) {
        (my $rel = $src) =~ s{/+$}{};
        ok(-e "$ROOT/$rel", "COPY $src: exists in the repository");
        ok(!ignored($rel, @ignore),
           "COPY $src: not left out of the context by .dockerignore");
    }
}

my %copied = runtime_files($runtime);    # image path => source

ok(-x "$ROOT/scripts/canary-ctl", 'scripts/canary-ctl is executable '
   . '(COPY keeps the mode)');


# ---- paths: configure, docker/nginx.conf, COPY, HEALTHCHECK ----------------

my ($configure) = grep { $_->{cmd} eq 'RUN' && $_->{args} =~ /\.\/configure/ }
                       @{$stages[0]{instructions}};
my %conf_opt = $configure
    ? $configure->{args} =~ /--([\w-]+)=("[^"]*"|\S+)/g : ();

ok($configure, 'the build stage configures nginx');
like($configure->{args} // '', qr/--with-compat\b/, 'configure --with-compat');
like($configure->{args} // '', qr{--add-dynamic-module=/src\b},
     'the module is a dynamic module of that nginx');
is($copied{$conf_opt{'conf-path'} // ''}, 'docker/nginx.conf',
   'docker/nginx.conf is at the compiled-in --conf-path');

my $wrapper = slurp("$ROOT/docker/nginx.conf");
my ($load) = $wrapper =~ /^\s*load_module\s+(\S+);/m;
my ($include) = $wrapper =~ /^\s*include\s+(\S+);/m;

is(dirname($load // ''), $conf_opt{'modules-path'},
   'load_module looks in the compiled-in --modules-path');
ok($copied{$load // ''}, "the module is copied to $load");
ok($copied{$include // ''} && $copied{$include} =~ /^conf-examples\//,
   'docker/nginx.conf includes a file of conf-examples/ ('
   . ($copied{$include // ''} // 'none') . ')');

my $default_src = $copied{$include // ''} // 'conf-examples/standalone.conf';
my $default = slurp("$ROOT/$default_src");
(my $default_nc = $default) =~ s/#[^\n]*//g;

unlike($default_nc, qr/^\s*canary_redis\b/m,
       "$default_src: needs no Redis to start");

my @hc_cmd = @{exec_form(($hc[0]{args} // '') =~ /\bCMD\s+(\[.*\])\s*$/
                         ? $1 : '[]')};
my ($hc_url) = grep { m{^https?://} } @hc_cmd;
my ($hc_port, $hc_path) = ($hc_url // '') =~ m{^http://[^/:]+:(\d+)(/[^?]*)};

is($hc_cmd[0], 'curl', 'the HEALTHCHECK runs curl (exec form)');
ok(installed_in_runtime('curl'), 'which the runtime stage installs');
ok(defined $hc_path, 'the HEALTHCHECK asks http://HOST:PORT/PATH: '
   . ($hc_url // 'none'));

# nginx's choice: the exact location, else the longest prefix
my %exact;
my %prefix;

while ($default_nc =~ /location\s+(=\s*)?(\S+)\s*\{([^{}]*)\}/g) {
    ($1 ? \%exact : \%prefix)->{$2} = $3;
}

my ($longest) = sort { length $b <=> length $a }
                grep { index($hc_path // '', $_) == 0 } keys %prefix;
my $hc_location = $exact{$hc_path // ''}
                  // (defined $longest ? $prefix{$longest} : undef);

ok(defined $hc_location && $hc_location =~ /^\s*canary_status\s*;/m,
   "the HEALTHCHECK path " . ($hc_path // 'none') . " is a canary_status "
   . "location of $default_src");
my $want_port = $hc_port // 0;
ok($default_nc =~ /^\s*listen\s+(?:\*:|0\.0\.0\.0:)?$want_port\b/m,
   "$default_src listens on the HEALTHCHECK's port " . ($hc_port // ''));

my ($expose) = map { $_->{args} } grep { $_->{cmd} eq 'EXPOSE' } @df;
is($expose, $hc_port, 'EXPOSE is that port');


# ---- runtime libraries -----------------------------------------------------

my %build_stand_in = (
    '/usr/src/nginx/objs/nginx' => $CanaryTest::NGINX,
    '/usr/src/nginx/objs/ngx_http_canary_module.so' => $CanaryTest::MODULE,
    '/usr/src/build/canary-sidecar' => "$ROOT/build/canary-sidecar",
);

my $rehearsal = rehearse();
%build_stand_in = %$rehearsal if $rehearsal;

SKIP: {
    skip 'dpkg-query, ldd and objdump map libraries to packages', 2
        unless have('dpkg-query') && have('ldd') && have('objdump');

    my (@missing, %checked);

    for my $bin (sort values %build_stand_in) {
        next unless -e $bin;

        for my $lib (needed_libs($bin)) {
            my $pkg = package_of($lib);
            $checked{basename($lib) . ' (' . ($pkg // '?') . ')'} = 1;

            # sanitizer runtimes: only in "make check" builds
            next if defined $pkg
                    && ($pkg eq 'libc6'
                        || $pkg =~ /^lib(?:a|ub|l|t|hwa)san\d*$/
                        || installed_in_runtime($pkg));

            push @missing, basename($bin) . ": $lib ("
                           . ($pkg // 'no package') . ")";
        }
    }

    note('linked: ' . join(', ', sort keys %checked));
    ok(keys %checked >= 5, 'the libraries of nginx, the module and the '
       . 'sidecar are known (' . scalar(keys %checked) . ')');
    is("@missing", '', 'the runtime stage installs the package of every '
       . 'library they link');
}

for my $from (sort keys %build_stand_in) {
    ok(grep({ $_ eq "build:$from" } values %copied),
       "the runtime stage copies $from from the build stage");
}


# ---- the image's default configuration -------------------------------------

my $t = CanaryTest->new(name => 'image');
my $img = $t->prefix . '/image';

# the files where the image has them
for my $path (sort keys %copied) {
    my $src = $copied{$path};
    my $file = $src =~ s/^build:// ? $build_stand_in{$src} : "$ROOT/$src";

    make_path(dirname("$img$path"));
    copy($file, "$img$path") or die "copy $file: $!";
}

make_path("$img$conf_opt{prefix}/logs");

# absolute paths of the image, inside our copy of it
(my $image_wrapper = slurp("$img$conf_opt{'conf-path'}"))
    =~ s{(?<=\s)(/(?:etc|usr|var)/)}{$img$1}g;
spew("$img$conf_opt{'conf-path'}", $image_wrapper);

{
    local %ENV = (%ENV, nginx_env());

    my ($rc, $out) = run(@{nginx_cmd()}, '-p', "$img$conf_opt{prefix}/",
                         '-c', "$img$conf_opt{'conf-path'}", '-e', 'stderr',
                         '-t');

    ok($rc == 0, "nginx -t accepts the image's configuration "
       . "($conf_opt{'conf-path'} and $include)") or diag($out);
    unlike($out, qr/\[(?:warn|emerg|alert|crit)\]/,
           'nginx -t has no warning about it');
}

# the rehearsed nginx has the image's compiled-in paths: as a user who may
# write only the prefix, as in the image, it needs nothing else
SKIP: {
    # make test has no tarball: .ci/run runs this file again with one
    skip 'optional: the non-root check runs on the rehearsed build '
         . '(CANARY_NGINX_TARBALL, by hand)', 1 unless $rehearsal;
    skip 'the non-root check needs root and setpriv', 1
        unless $> == 0 && have('setpriv');

    my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
    my ($rc, $out) = run('chown', '-R', "$uid:$gid", "$img$conf_opt{prefix}");
    die "chown: $out" if $rc;

    local %ENV = (%ENV, nginx_env());

    ($rc, $out) = run('setpriv', "--reuid=$uid", "--regid=$gid",
                      '--clear-groups', @{nginx_cmd()}, '-p',
                      "$img$conf_opt{prefix}/", '-c',
                      "$img$conf_opt{'conf-path'}", '-t');
    ok($rc == 0 && $out !~ /\[(?:warn|emerg|alert|crit)\]/,
       'as an unprivileged user, nginx -t needs only the prefix writable')
        or diag($out);
}

# and it runs: our ports for 8080 and the demo origins, and the pid and the
# error log where the harness looks for them
my %port = (8080 => $t->port('http'), 8081 => $t->port('o1'),
            8082 => $t->port('o2'));
(my $site = $default) =~ s/(listen\s+(?:127\.0\.0\.1:)?|server\s+127\.0\.0\.1:)
                           (808[012])\b/$1$port{$2}/gx;
$site =~ s/^(\s*pid\s+)\S+;/$1nginx.pid;/m;
$site =~ s/^(\s*error_log\s+)\S+/$1error.log/m;
spew("$img$include", $site);

# the CMD's -g directives ("daemon off;") as the image runs them
my %g = @$cmd[1 .. $#$cmd];
$t->write_conf(undef, raw => ($g{'-g'} // '') . "\n" . $image_wrapper);
{
    local $CanaryTest::NGINX = nginx_cmd()->[0];
    $t->start;
}

SKIP: {
    skip 'curl is not installed', 1 unless have('curl');

    my @cmd = @hc_cmd;
    s/:$hc_port\//:$port{$hc_port}\// for @cmd;

    my ($rc, $out) = run(@cmd);
    is($rc, 0, "the HEALTHCHECK command succeeds: @cmd") or diag($out);
}

my $r = $t->get($port{8080}, $hc_path // '/canary_status');
my $status = eval { decode_json($r->{content}) };
ok($status && $status->{splits} && %{$status->{splits}},
   'the healthcheck path answers the JSON status of the demo split');

my %seen;

for my $tenant (map { "tenant-$_" } 1 .. 40) {
    my $d = $t->route($port{8080}, '/', { 'X-Tenant-Id' => $tenant });
    $seen{$d->{side} // 'none'}++;
    $seen{mismatch}++ if ($d->{side} // '') ne ($d->{variant} // '');
}

ok($seen{stable} && $seen{canary} && !$seen{none} && !$seen{mismatch},
   'the demo split sends tenants to both demo origins, as it says: '
   . join(', ', map { "$_ $seen{$_}" } sort keys %seen));

my $d = $t->route($port{8080}, '/', { 'X-Tenant-Id' => 'x',
                                       'X-Canary' => 'always' });
is($d->{side}, 'canary', 'X-Canary: always goes to canary');

$t->stop;

done_testing;


# ---- helpers ---------------------------------------------------------------

sub have {
    my ($prog) = @_;

    return scalar grep { -x "$_/$prog" } split /:/, $ENV{PATH} // '';
}


sub run {
    my (@cmd) = @_;

    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec @cmd or do { print "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }

    local $/;
    my $out = <$fh> // '';
    close $fh;

    return ($? >> 8, $out);
}


sub slurp {
    my ($file) = @_;

    open my $fh, '<', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}


sub spew {
    my ($file, $text) = @_;

    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh;
}


sub nginx_h_version {
    my ($file) = @_;

    open my $fh, '<', $file or return undef;

    while (<$fh>) {
        return $1 if /^#define\s+NGINX_VERSION\s+"([^"]+)"/;
    }

    return undef;
}


# instructions: { cmd, args, line, stage, shell }; continuation lines
# joined, comment lines dropped, as Docker reads them
sub parse_dockerfile {
    my ($file) = @_;

    open my $fh, '<', $file or die "$file: $!";

    my (@out, $buf, $start);
    my $stage = -1;
    my %shell;

    while (my $line = <$fh>) {
        chomp $line;
        next if $line =~ /^\s*#/;
        next if !defined $buf && $line =~ /^\s*$/;

        $start = $. unless defined $buf;

        if ($line =~ s/\\\s*$//) {
            $buf = (defined $buf ? $buf : '') . $line;
            next;
        }

        $buf = (defined $buf ? $buf : '') . $line;

        my ($cmd, $args) = $buf =~ /^\s*(\w+)\s*(.*?)\s*$/s;
        $cmd = uc $cmd;
        $args =~ s/\s+/ /g;

        $stage++ if $cmd eq 'FROM';
        $shell{$stage} = $args if $cmd eq 'SHELL';

        push @out, { cmd => $cmd, args => $args, line => $start,
                     stage => $stage, shell => $shell{$stage} };
        undef $buf;
    }

    return @out;
}


sub stages {
    my (@ins) = @_;

    my @s;

    for my $i (@ins) {
        if ($i->{cmd} eq 'FROM') {
            my ($from, $name) = $i->{args} =~ /^(\S+)(?:\s+AS\s+(\S+))?/i;
            push @s, { from => $from, name => $name, instructions => [] };
            next;
        }

        push @{$s[-1]{instructions}}, $i if @s;
    }

    return @s;
}


sub global_args {
    my (@ins) = @_;

    my %a;

    for my $i (@ins) {
        last if $i->{cmd} eq 'FROM';
        $a{$1} = $2 if $i->{cmd} eq 'ARG' && $i->{args} =~ /^(\w+)=(\S+)/;
    }

    return %a;
}


sub exec_form {
    my ($text) = @_;

    my $v = eval { decode_json($text) };

    return ref $v eq 'ARRAY' ? $v : [];
}


# (\%flags, \@sources, $dest) of a COPY, shell or exec form
sub copy_args {
    my ($args) = @_;

    my %flags;

    while ($args =~ s/^--(\w+)=(\S+)\s*//) {
        $flags{$1} = $2;
    }

    my @words = $args =~ /^\[/ ? @{exec_form($args)} : split ' ', $args;
    my $dest = pop @words;

    return (\%flags, \@words, $dest);
}


# image path => "repo/path" or "build:/path in the build stage"
sub runtime_files {
    my ($stage) = @_;

    my %files;

    for my $c (grep { $_->{cmd} eq 'COPY' } @{$stage->{instructions}}) {
        my ($flags, $srcs, $dest) = copy_args($c->{args});

        for my $src (@$srcs) {
            my $path = $dest =~ m{/$} ? $dest . basename($src) : $dest;

            $files{$path} = defined $flags->{from} ? "build:$src" : $src;
        }
    }

    return %files;
}


# .dockerignore as a list of [regex, negated]; the last match wins
sub dockerignore {
    my ($file) = @_;

    open my $fh, '<', $file or return ();

    my @rules;

    while (my $p = <$fh>) {
        chomp $p;
        $p =~ s/^\s+|\s+$//g;
        next if $p eq '' || $p =~ /^#/;

        my $neg = $p =~ s/^!//;
        $p =~ s{^/+|/+$}{}g;

        my $re = join '', map {
              $_ eq '**' ? '.*'
            : $_ eq '*'  ? '[^/]*'
            : $_ eq '?'  ? '[^/]'
            : quotemeta
        } split /(\*\*|\*|\?)/, $p;

        $re =~ s{\.\*/}{(?:.*/)?}g;
        push @rules, [qr{^$re(?:/.*)?$}, $neg];
    }

    return @rules;
}


sub ignored {
    my ($path, @rules) = @_;

    my $out = 0;

    for my $r (@rules) {
        $out = !$r->[1] if $path =~ $r->[0];
    }

    return $out;
}


sub installed_in_runtime {
    my ($pkg) = @_;

    for my $i (grep { $_->{cmd} eq 'RUN' } @{$runtime->{instructions}}) {
        next unless $i->{args}
                    =~ /apt-get\s+(?:-\S+\s+)*install\s+(.*?)(?:&&|$)/;
        my @pkgs = grep { !/^-/ } split ' ', $1;
        return 1 if grep { $_ eq $pkg } @pkgs;
    }

    return 0;
}


sub needed_libs {
    my ($bin) = @_;

    my ($rc, $out) = run('ldd', $bin);
    my @libs;

    for (split /\n/, $out) {
        push @libs, $1 if m{=>\s+(/\S+)};
        push @libs, $1 if m{^\s*(/\S+)\s+\(};
    }

    # only what the file itself asks for, not what its libraries do
    my ($orc, $dump) = run('objdump', '-p', $bin);
    my %direct = map { $_ => 1 } $dump =~ /NEEDED\s+(\S+)/g;

    return grep { $direct{basename($_)} } @libs if %direct;
    return @libs;
}


sub package_of {
    my ($lib) = @_;

    my $real = abs_path($lib) // $lib;

    for my $path ($lib, $real, map { (my $p = $_) =~ s{^/usr}{}; $p }
                                  $lib, $real)
    {
        my ($rc, $out) = run('dpkg-query', '-S', $path);
        next if $rc != 0;
        my ($pkg) = $out =~ /^([^:,\s]+)/;
        return $pkg;
    }

    return undef;
}


# as CanaryTest runs nginx: a sanitizer build needs its runtime first
sub nginx_env {
    return () unless $CanaryTest::PRELOAD;

    return (LD_PRELOAD => $CanaryTest::PRELOAD,
            ASAN_OPTIONS => $ENV{ASAN_OPTIONS} || 'detect_leaks=0');
}


sub nginx_cmd {
    my @cmd = ($build_stand_in{'/usr/src/nginx/objs/nginx'});
    return \@cmd;
}


# CANARY_NGINX_TARBALL: run the build stage's own commands here; returns
# the build-stage paths of what they built, or undef
sub rehearse {
    my $tarball = $ENV{CANARY_NGINX_TARBALL} or return undef;

    my $dir = tempdir('canary-docker-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $map = sub {
        my ($s) = @_;
        $s =~ s{(?<![\w/])/usr/src\b}{$dir/usr/src}g;
        $s =~ s{(?<![\w/])/src\b}{$dir/src}g;
        return $s;
    };

    my ($rc, $out) = run('sha256sum', $tarball);
    my ($sum) = $out =~ /^([0-9a-f]{64})/;
    is($sum, $arg{NGINX_SHA256}, "rehearsal: $tarball has NGINX_SHA256")
        or return undef;

    make_path("$dir/usr/src/nginx");
    ($rc, $out) = run('tar', '-xzf', $tarball, '-C', "$dir/usr/src/nginx",
                      '--strip-components=1');
    is($rc, 0, 'rehearsal: the tarball unpacks') or diag($out);

    # the build stage's COPY lines, then its RUN lines after the download
    my $workdir = '/';
    my $after_download = 0;

    for my $i (@{$stages[0]{instructions}}) {
        if ($i->{cmd} eq 'WORKDIR') {
            $workdir = $i->{args};

        } elsif ($i->{cmd} eq 'COPY') {
            my ($flags, $srcs, $dest) = copy_args($i->{args});

            # as Docker does: a directory's contents, a file into dest/
            for my $src (@$srcs) {
                my $to = $map->($dest);
                make_path($to);
                ($rc, $out) = run('cp', '-a', -d "$ROOT/$src"
                                  ? "$ROOT/$src/." : "$ROOT/$src", $to);
                die "rehearsal: cp $src: $out" if $rc;
            }

        } elsif ($i->{cmd} eq 'RUN') {
            if ($i->{args} =~ /nginx\.org/) {
                $after_download = 1;
                next;
            }

            next unless $after_download;

            my $cmd = $map->($i->{args});
            my $cwd = $map->($workdir);

            ($rc, $out) = run('bash', '-o', 'pipefail', '-c',
                              "cd '$cwd' && $cmd");
            is($rc, 0, "rehearsal: RUN at line $i->{line}")
                or do { diag(substr($out, -3000)); return undef };
        }
    }

    return { map { ($_ => $map->($_)) } keys %build_stand_in };
}
