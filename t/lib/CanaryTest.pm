package CanaryTest;

=head1 NAME

CanaryTest - run real nginx (and Redis) with ngx_http_canary_module for tests

=head1 SYNOPSIS

    use FindBin;
    use lib "$FindBin::Bin/lib";
    use Test::More;
    use CanaryTest;

    my $t = CanaryTest->new;
    my $port = $t->port('http');

    $t->write_conf(<<~"EOF", workers => 2);
        canary_zone canary 4m;
        canary_split app { stable stable_up; canary canary_up; weight 5; }
        ${\ $t->origins }
        server {
            listen 127.0.0.1:$port;
            canary app;
            location / {
                ${\ CanaryTest::expose_vars() }
                proxy_pass http://\$canary_upstream;
            }
        }
    EOF
    $t->start;

    my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'acme' });
    is $d->{side}, $d->{variant}, 'went where it said';
    is $d->{bucket}, CanaryTest::bucket('', 'acme'), 'bucket formula';

    $t->stop;            # graceful quit + error log check (one ok())
    done_testing;

Core Perl only: Test::More, HTTP::Tiny, IO::Socket::INET, IO::Select,
File::Temp, File::Path, File::Copy, POSIX, Time::HiRes, Storable,
Scalar::Util.

=head1 ENVIRONMENT

=over

=item CANARY_MODULE

Absolute path of the module to load; default C<build/ngx_http_canary_module.so>
of this repository.

=item CANARY_NGINX

The nginx binary; default C</usr/sbin/nginx>.

=item CANARY_NGINX_PRELOAD

Put in C<LD_PRELOAD> for nginx only, e.g. C<libasan.so.8> to run a module
built with C<-fsanitize=address> (C<make BUILD=... MODULE_CC_OPT=...>).
C<ASAN_OPTIONS> defaults to C<detect_leaks=0> then.

=item CANARY_KEEP

When true, the prefix directory is kept even when every test passed.

=item CANARY_NO_SKIP

When true (C<.ci/run> sets it; C<make test> does when C<CI=true>), a skip
or a C<plan skip_all> fails instead, unless its reason begins with
C<optional:> (what CI does not run by design, e.g. the soak in C<make
test>).

=back

=head1 CONSTRUCTOR

=over

=item CanaryTest->new(%opts)

Makes a temporary prefix directory (File::Temp).  It is removed when the
test file passes and KEPT when anything failed (or the script died); its
path is then printed with C<diag>.  Options: C<name> (a label used in test
names and diagnostics, default C<nginx>).

=back

=head1 METHODS

=head2 Setup

=over

=item $t->port($name)

A free loopback TCP port, the same one every time for the same name.

=item $t->prefix, $t->conf_path, $t->error_log_path, $t->module_path

Paths of this instance.  C<module_path> is a copy of the module made by
C<new> in the prefix: C<make> rewrites C<build/*.so> in place, which would
crash an nginx that has it loaded, so tests load the copy.

=item $t->write_conf($http_body, %opts)

Writes C<nginx.conf>: C<load_module> of the module (the copy, see
C<module_path>), C<worker_processes>
(opt C<workers>, default 1), C<master_process on>, C<daemon> (opt C<daemon>,
default 0: the harness is the master's parent and manages its pid),
C<error_log PREFIX/error.log LEVEL> (opt C<log_level>, default C<info>),
C<pid>, an C<events> block, and C<http { ... }> with C<access_log off>,
temp paths inside the prefix and the body.  Opt C<main> adds text in the
main context, opt C<http_pre> text in http before the body.  Opt C<raw>
writes the given text as the whole configuration instead (the body is then
ignored; pass undef).  Returns the text written.

=item $t->origins(%opts)

Configuration text for two origin servers plus their C<upstream> blocks:
C<stable_up> answering C<"stable stable_up\n"> and C<canary_up> answering
C<"canary canary_up\n"> (header C<X-Origin> too).  Opts C<stable> and
C<canary> rename the upstreams (the body is always C<"SIDE UPSTREAM\n">).

=item CanaryTest::expose_vars()

C<add_header> lines exposing every C<$canary_*> variable plus the worker
C<$pid> as C<X-Canary-Variant>, C<X-Canary-Reason>, C<X-Canary-Bucket>,
C<X-Canary-Weight>, C<X-Canary-Upstream>, C<X-Worker-Pid>.

=back

=head2 nginx processes

=over

=item $t->nginx_t(MORE_OPTIONS)

Runs C<nginx -t> (and MORE_OPTIONS, e.g. C<-q>) on the written
configuration without starting anything; returns C<(exit_ok,
output_text)>.  What it logs is not checked as a bad error log (it is the
output).

=item $t->start

Starts nginx (C<-p prefix -c conf -e error.log>), waits until every
C<listen> address in the configuration accepts connections; dies with the
error log on failure.

=item $t->reload(%opts)

C<nginx -s reload>, then waits until every old worker is gone and the new
workers (as many as C<worker_processes>) exist.  Dies when a new
C<[emerg]> appears instead.  With C<< refused => 1 >> the reload must fail:
waits for the C<[emerg]> and for the master to finish, checks that the old
workers still run and none was added, and returns the log lines of the
attempt (declare them with C<allow_log>).

=item $t->stop

Graceful quit (SIGQUIT), waits for the master to exit, then checks the
error log (one C<ok()>, see L</Error log>).  A master still running 15 s
after SIGQUIT is killed and the test fails (a shutdown hang).

=item $t->master_pid, $t->worker_pids(%o)

The master pid (from the pid file or the harness) and the live workers
(C<ps --ppid>); C<< all => 1 >> includes workers "shutting down".

=back

=head2 Requests

Every response is a hash like HTTP::Tiny's: C<status>, C<content>,
C<headers> (lowercase names; a repeated header is an array ref).  Status
599 (HTTP::Tiny) or 0 (raw clients) means no HTTP response.

=over

=item $t->get($port, $path, \%headers, %opts)

=item $t->request($method, $port, $path, \%headers, %opts)

One request with HTTP::Tiny.  Opts: C<keep_alive> (default 0, so that each
request has its own connection and workers share the load),
C<local_address> (e.g. C<127.0.0.2> to come from another client address),
C<timeout>, C<content>.  A header value may be an array ref (the header is
sent several times).

=item $t->request_many($port, \@requests, %opts)

Many requests quickly: C<clients> forked processes (default 2), each with
pipelined keep-alive connections (C<batch> requests a connection, default
64).  A request is C<< { path => '/x', headers => [Name => value, ...] } >>
(or a hash ref of headers; also C<method>, C<local_address>).  Returns the
responses in request order.

=item $t->raw_request($port, $bytes, %opts)

Writes the bytes as they are (anything: binary, malformed) and parses the
first response; C<status> is 0 when the connection closed without one;
C<raw> holds what was read.  Opt C<local_address>, C<timeout>.

=item $t->route($port, $path, \%headers, %opts)

=item $t->route_many($port, \@requests, %opts)

As get and request_many, returning C<decision>s.

=item CanaryTest::decision($response)

C<< { status, side, origin, variant, reason, bucket, weight, upstream,
pid } >>: C<side> and C<origin> are the words of the origin's body, the
rest come from the headers of C<expose_vars>.

=back

=head2 Redis and helpers

=over

=item $t->redis_start, $t->redis_stop, $t->redis_port, $t->redis_cli(@args)

A real C<redis-server> on a free loopback port, its dir in the prefix,
C<--save '' --appendonly no>; start waits for PING.  C<redis_cli> runs
C<redis-cli -h 127.0.0.1 -p PORT @args> and returns its output (chomped;
lines in list context).

=item $t->spawn(@command)

Starts a helper process that teardown kills (TERM, then KILL).  Returns its
pid.

=back

=head2 Error log

=over

=item $t->allow_log(qr/.../)

Lines matching are not counted as bad.

=item $t->check_log($what)

One C<ok()>: fails, printing the lines, if the error log (since the last
check) has any C<[alert]>, C<[emerg]> or C<[crit]> line, or any
AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer or
C<runtime error:> line.  Called by C<stop>.

=item $t->error_log, $t->log_mark, $t->log_since($mark)

The whole log text; an offset in it; the text after an offset.

=item $t->wait_for_log(qr/.../, $seconds, $mark)

Waits until a line (after the offset) matches; returns it, or undef on
timeout.

=item teardown

When the object is destroyed, or at the latest in the harness's END block,
everything it started is stopped (nginx, Redis, helpers); a log not checked
since is checked (a bad log adds a failing C<ok()>, even after
C<done_testing>).  The END block then removes the prefixes, only when the
file passed and exits 0.  Forked children (request_many's clients) never
tear anything down.

=back

=head2 Bucket formula

=over

=item CanaryTest::murmur2($bytes)

MurmurHash2 exactly as nginx's C<ngx_murmur_hash2()> (seed 0, 32-bit).

=item CanaryTest::bucket($salt, $key)

C<floor(murmur2($salt . ':' . $key) * 10000 / 2**32)>, 0 .. 9999.  A
tenant is on canary when C<bucket < weight * 100>.

=item CanaryTest::is_canary($salt, $key, $weight)

1 when the formula puts the key on canary at that weight (a percent).

=back

=head2 Percentiles

=over

=item CanaryTest::quantile(\@counts, \@le_ms, $q)

The module's rule for C<p50_ms> and the like: the midpoint of the bucket
that holds rank C<ceil(q n)> of a histogram, from the C<counts> and
C<le_ms> of the status JSON (milliseconds); undef when that bucket is
+Inf or the histogram is empty.

=back

=cut

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno qw(EINTR);
use Fcntl qw(SEEK_SET);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG _exit);
use Scalar::Util qw(weaken);
use Socket qw(SOL_SOCKET SO_REUSEADDR);
use Storable qw(nstore retrieve);
use Test::More;
use Time::HiRes qw(sleep time);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $NGINX = $ENV{CANARY_NGINX} || '/usr/sbin/nginx';
our $MODULE = $ENV{CANARY_MODULE}
    || "$ROOT/build/ngx_http_canary_module.so";
our $PRELOAD = $ENV{CANARY_NGINX_PRELOAD};

my @INSTANCES;          # weak refs, for the END block
my @DIRS;               # { prefix, name, keep }: removed in END
my %PORTS_TAKEN;        # across instances of one test file
my $OWNER = $$;         # forked children never tear anything down

my $BAD_LOG = qr/\[(?:alert|emerg|crit)\]|AddressSanitizer|LeakSanitizer
                |UndefinedBehaviorSanitizer|ThreadSanitizer|runtime\ error:/x;

# a Ctrl-C or kill still runs END blocks, so nothing is left running
$SIG{INT} = $SIG{TERM} = sub { die "killed by SIG$_[0]\n" };

# how long a graceful quit (SIGQUIT) may take before the test fails
our $QUIT_SECONDS = 15;

# CANARY_NO_SKIP: every test is expected to run (CI: .ci/run sets it,
# and make test when CI=true): a skip, or a skip_all, fails instead,
# unless its reason begins with "optional:", what CI does not run by
# design (README says which and why)
our $OPTIONAL_SKIP = qr/^optional:/;

if ($ENV{CANARY_NO_SKIP}) {
    no warnings 'redefine';

    my $skip = \&Test::Builder::skip;
    my $plan = \&Test::Builder::plan;

    *Test::Builder::skip = sub {
        my ($tb, $why) = @_;

        return $skip->(@_) if ($why // '') =~ $OPTIONAL_SKIP;

        local $Test::Builder::Level = $Test::Builder::Level + 2;
        $tb->ok(0, 'not skipped (CANARY_NO_SKIP): ' . ($why // ''));
    };

    # "plan skip_all => ..." (Test::Builder's plan dispatches to its own
    # skip_all, not through a method call)
    *Test::Builder::plan = sub {
        my ($tb, $cmd, $why) = @_;

        return $plan->(@_) if !defined $cmd || $cmd ne 'skip_all'
                              || ($why // '') =~ $OPTIONAL_SKIP;

        $tb->ok(0, 'the whole file not skipped (CANARY_NO_SKIP): '
                   . ($why // ''));
        $tb->done_testing;
        exit 1;
    };
}


sub new {
    my ($class, %opts) = @_;

    die "CanaryTest: module $MODULE not found: run make\n" unless -f $MODULE;

    my $prefix = tempdir('canary-test-XXXXXX', TMPDIR => 1, CLEANUP => 0);

    # workers run as an unprivileged user when we are root
    chmod 0755, $prefix;
    make_path("$prefix/logs", "$prefix/tmp");

    my $self = bless {
        name      => $opts{name} || 'nginx',
        prefix    => $prefix,
        ports     => {},
        allow     => [],
        helpers   => [],
        log_off   => 0,
        workers   => 1,
        owner     => $$,
    }, $class;

    push @INSTANCES, $self;
    weaken($INSTANCES[-1]);

    push @DIRS, $self->{dir} = { prefix => $prefix, name => $self->{name} };

    # a snapshot: "make" rewrites build/*.so in place, which would crash a
    # running nginx that has it mapped
    copy($MODULE, "$prefix/ngx_http_canary_module.so")
        or die "CanaryTest: copy $MODULE: $!\n";

    return $self;
}


sub prefix         { $_[0]{prefix} }
sub conf_path      { "$_[0]{prefix}/nginx.conf" }
sub error_log_path { "$_[0]{prefix}/error.log" }
sub pid_path       { "$_[0]{prefix}/nginx.pid" }
sub module_path    { "$_[0]{prefix}/ngx_http_canary_module.so" }
sub nginx_bin      { $NGINX }


sub port {
    my ($self, $name) = @_;

    $name = 'default' unless defined $name;

    return $self->{ports}{$name} if $self->{ports}{$name};

    # below the ephemeral range, so that client sockets never take it
    for (1 .. 1000) {
        my $p = 10000 + int(rand(20000));
        next if $PORTS_TAKEN{$p};

        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1',
            LocalPort => $p,
            Proto     => 'tcp',
            Listen    => 1,
        ) or next;
        close $s;

        $PORTS_TAKEN{$p} = 1;
        return $self->{ports}{$name} = $p;
    }

    die "CanaryTest: no free port\n";
}


# ---- configuration --------------------------------------------------------

sub write_conf {
    my ($self, $body, %opts) = @_;

    my $p = $self->{prefix};
    my $text;

    if (defined $opts{raw}) {
        $text = $opts{raw};

    } else {
        my $workers = defined $opts{workers} ? $opts{workers} : 1;
        my $daemon = $opts{daemon} ? 'on' : 'off';
        my $level = $opts{log_level} || 'info';
        my $main = defined $opts{main} ? $opts{main} : '';
        my $pre = defined $opts{http_pre} ? $opts{http_pre} : '';
        my $user = $> == 0 ? "user nobody nogroup;\n" : '';

        $body = '' unless defined $body;

        $text = <<"EOF";
load_module $p/ngx_http_canary_module.so;

${user}worker_processes $workers;
master_process on;
daemon $daemon;
error_log $p/error.log $level;
pid $p/nginx.pid;

$main

events {
    worker_connections 1024;
}

http {
    access_log off;

    client_body_temp_path $p/tmp/client_body;
    proxy_temp_path       $p/tmp/proxy;
    fastcgi_temp_path     $p/tmp/fastcgi;
    uwsgi_temp_path       $p/tmp/uwsgi;
    scgi_temp_path        $p/tmp/scgi;

$pre
$body
}
EOF
    }

    $self->{daemon} = $text =~ /^\s*daemon\s+on\s*;/m ? 1 : 0;
    $self->{workers} = $text =~ /^\s*worker_processes\s+(\d+)\s*;/m ? $1 : 0;

    open my $fh, '>', $self->conf_path
        or die "CanaryTest: write " . $self->conf_path . ": $!\n";
    print $fh $text;
    close $fh;

    $self->{conf} = $text;

    return $text;
}


sub origins {
    my ($self, %opts) = @_;

    my $text = '';

    for my $side (qw(stable canary)) {
        my $up = $opts{$side} || "${side}_up";
        my $port = $self->port("origin:$up");

        $text .= <<"EOF";
    upstream $up {
        server 127.0.0.1:$port;
    }

    server {
        listen 127.0.0.1:$port;

        location / {
            add_header X-Origin "$side $up" always;
            return 200 "$side $up\\n";
        }
    }

EOF
    }

    return $text;
}


sub expose_vars {
    return <<'EOF';
            add_header X-Canary-Variant  $canary_variant  always;
            add_header X-Canary-Reason   $canary_reason   always;
            add_header X-Canary-Bucket   $canary_bucket   always;
            add_header X-Canary-Weight   $canary_weight   always;
            add_header X-Canary-Upstream $canary_upstream always;
            add_header X-Worker-Pid      $pid             always;
EOF
}


sub _listen_addrs {
    my ($self) = @_;

    my @addrs;
    my $conf = $self->{conf} || '';

    # strip comments so that commented-out listens are not waited for
    $conf =~ s/#[^\n]*//g;

    while ($conf =~ /(?:^|[\s;{])listen\s+([^\s;]+)/g) {
        my $addr = $1;

        if ($addr =~ /^(\d+\.\d+\.\d+\.\d+):(\d+)$/) {
            push @addrs, [$1 eq '0.0.0.0' ? '127.0.0.1' : $1, $2];

        } elsif ($addr =~ /^(?:\*:)?(\d+)$/) {
            push @addrs, ['127.0.0.1', $1];
        }
    }

    return @addrs;
}


# ---- running commands ------------------------------------------------------

# runs a command, returns (exit status, stdout+stderr)
sub _run {
    my (@cmd) = @_;

    local $?;    # leave the script's exit status alone

    my $pid = open(my $fh, '-|');
    die "CanaryTest: fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec @cmd or do { print "exec $cmd[0]: $!\n"; _exit(127) };
    }

    local $/;
    my $out = <$fh>;
    close $fh;

    return ($? >> 8 | ($? & 127), defined $out ? $out : '');
}


# the environment of nginx commands only
sub _nginx_env {
    return () unless $PRELOAD;

    return (LD_PRELOAD => $PRELOAD,
            ASAN_OPTIONS => $ENV{ASAN_OPTIONS} || 'detect_leaks=0');
}


sub _run_nginx {
    my ($self, @args) = @_;

    my %env = _nginx_env();
    local @ENV{keys %env} = values %env;

    return _run($self->_nginx_args, @args);
}


sub _nginx_args {
    my ($self) = @_;

    return ($NGINX, '-p', "$self->{prefix}/", '-c', $self->conf_path,
            '-e', $self->error_log_path);
}


sub nginx_t {
    my ($self, @args) = @_;     # more options: '-q'

    die "CanaryTest: write_conf first\n" unless $self->{conf};

    # what -t logs is its output, not a bad log of a running nginx: skip
    # it, but keep what a running nginx logged before
    push @{$self->{pending_bad}}, $self->bad_log_lines($self->{log_off});
    $self->{stderr_off} = -s "$self->{prefix}/stderr.log" || 0;

    my ($rc, $out) = $self->_run_nginx('-t', @args);

    $self->{log_off} = $self->log_mark;

    return ($rc == 0, $out);
}


sub _alive {
    my ($pid) = @_;

    return 0 unless $pid && kill(0, $pid);

    # a daemon's master is reaped by pid 1, which may never do it
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh>;
        return 0 if defined $stat && $stat =~ /^\d+ \(.*\) Z/s;
    }

    return 1;
}


sub _read_pid_file {
    my ($self) = @_;

    open my $fh, '<', $self->pid_path or return undef;
    my $pid = <$fh>;
    return undef unless defined $pid && $pid =~ /^(\d+)/;
    return $1;
}


sub master_pid {
    my ($self) = @_;

    return $self->{master} if $self->{master};
    return $self->_read_pid_file;
}


sub _can_connect {
    my ($host, $port) = @_;

    my $s = IO::Socket::INET->new(
        PeerAddr => $host,
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => 1,
    ) or return 0;
    close $s;

    return 1;
}


sub start {
    my ($self) = @_;

    local $?;    # leave the script's exit status alone

    die "CanaryTest: write_conf first\n" unless $self->{conf};
    die "CanaryTest: nginx already running\n" if $self->{running};

    unlink $self->pid_path;
    $self->{log_start} = $self->log_mark;

    my @cmd = $self->_nginx_args;

    if ($self->{daemon}) {
        my ($rc, $out) = $self->_run_nginx;

        if ($rc != 0) {
            die "CanaryTest: nginx failed to start (exit $rc):\n$out\n"
                . $self->_log_for_death;
        }

        $self->{master} = undef;

    } else {
        my $pid = fork;
        die "CanaryTest: fork: $!\n" unless defined $pid;

        if ($pid == 0) {
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', "$self->{prefix}/stderr.log";
            open STDERR, '>&', \*STDOUT;
            my %env = _nginx_env();
            @ENV{keys %env} = values %env;
            exec @cmd or _exit(127);
        }

        $self->{master} = $pid;
    }

    $self->{running} = 1;

    my $deadline = time + 15;

    # the pid file says the master is up, then every listen must answer
    for (;;) {
        $self->_check_master_alive;

        my $pid = $self->_read_pid_file;
        last if $pid && (!$self->{master} || $pid == $self->{master});

        $self->_die_with_log("nginx wrote no pid file") if time > $deadline;
        sleep 0.02;
    }

    for my $a ($self->_listen_addrs) {
        until (_can_connect(@$a)) {
            $self->_check_master_alive;
            $self->_die_with_log("nginx does not accept on $a->[0]:$a->[1]")
                if time > $deadline;
            sleep 0.02;
        }
    }

    # workers are up when they exist (they accept once they run)
    until ($self->worker_pids >= ($self->{workers} || 1)) {
        $self->_check_master_alive;
        $self->_die_with_log("nginx started no workers") if time > $deadline;
        sleep 0.02;
    }

    return $self;
}


sub _check_master_alive {
    my ($self) = @_;

    local $?;    # leave the script's exit status alone

    if ($self->{master}) {
        my $r = waitpid($self->{master}, WNOHANG);

        if ($r == $self->{master}) {
            my $st = $?;
            $self->{master} = undef;
            $self->{running} = 0;
            $self->_die_with_log("nginx master exited (status $st)");
        }

        return;
    }

    my $pid = $self->_read_pid_file;

    if ($pid && !_alive($pid)) {
        $self->{running} = 0;
        $self->_die_with_log("nginx master $pid is gone");
    }
}


sub _log_for_death {
    my ($self) = @_;

    my $text = "---- error log ($self->{prefix}/error.log):\n"
               . $self->log_since($self->{log_start} || 0);

    if (-s "$self->{prefix}/stderr.log") {
        open my $fh, '<', "$self->{prefix}/stderr.log";
        local $/;
        $text .= "---- stderr:\n" . <$fh>;
    }

    return $text;
}


sub _die_with_log {
    my ($self, $msg) = @_;

    die "CanaryTest: $msg\n" . $self->_log_for_death . "\n";
}


# [pid, args] of each child of the master ("nginx: worker process", "...
# is shutting down", the cache processes)
sub _children {
    my ($self) = @_;

    local $?;    # leave the script's exit status alone

    my $master = $self->master_pid or return ();

    return map { /^\s*(\d+)\s+(.*?)\s*$/ ? [$1, $2] : () }
           `ps --ppid $master -o pid=,args= 2>/dev/null`;
}


sub worker_pids {
    my ($self, %opts) = @_;

    my @pids;

    for my $child ($self->_children) {
        my ($pid, $args) = @$child;

        next unless $args =~ /worker process/;
        next if !$opts{all} && $args =~ /shutting down/;
        next unless _alive($pid);

        push @pids, $pid;
    }

    return @pids;
}


sub reload {
    my ($self, %opts) = @_;

    local $?;    # leave the script's exit status alone

    die "CanaryTest: nginx is not running\n" unless $self->{running};

    my %old = map { $_ => 1 } $self->worker_pids(all => 1);
    my $mark = $self->log_mark;

    my ($rc, $out) = $self->_run_nginx('-s', 'reload');

    if ($rc != 0) {
        die "CanaryTest: nginx -s reload failed (exit $rc):\n$out\n"
            . $self->log_since($mark);
    }

    return $self->_reload_refused($mark, \%old) if $opts{refused};

    my $want = $self->{workers} || 1;
    my $deadline = time + 20;

    for (;;) {
        $self->_check_master_alive;

        my $new = grep { !$old{$_} } $self->worker_pids;
        my $old = grep { _alive($_) } keys %old;

        last if $new >= $want && $old == 0;

        my $since = $self->log_since($mark);

        if ($since =~ /\[emerg\]/) {
            die "CanaryTest: reload refused:\n$since\n";
        }

        if (time > $deadline) {
            die "CanaryTest: reload did not finish ($new new workers, "
                . "$old old ones left):\n$since\n";
        }

        sleep 0.02;
    }

    return $self;
}


# a reload expected to fail: waits for the [emerg], then for the master to
# be done (the log quiet for a second); the old workers must still serve
sub _reload_refused {
    my ($self, $mark, $old) = @_;

    local $?;    # leave the script's exit status alone

    my $deadline = time + 20;
    my ($size, $quiet_since) = (-1, time);

    for (;;) {
        $self->_check_master_alive;

        if (grep { !$old->{$_} } $self->worker_pids) {
            die "CanaryTest: the reload expected to fail started workers:\n"
                . $self->log_since($mark);
        }

        my $now = $self->log_mark;
        ($size, $quiet_since) = ($now, time) if $now != $size;

        my $since = $self->log_since($mark);

        last if $since =~ /\[emerg\]/ && time - $quiet_since > 1;

        die "CanaryTest: the reload expected to fail did not:\n$since\n"
            if time > $deadline;

        sleep 0.05;
    }

    my @gone = grep { !_alive($_) } keys %$old;
    die "CanaryTest: old workers @gone exited after a refused reload\n"
        if @gone;

    return $self->log_since($mark);
}


sub stop {
    my ($self, %opts) = @_;

    local $?;    # leave the script's exit status alone

    return $self unless $self->{running};

    my $master = $self->master_pid;

    $self->{running} = 0;

    if ($master) {
        kill 'QUIT', $master;

        my $t0 = time;
        my $deadline = $t0 + $QUIT_SECONDS;
        my $signal = 'TERM';
        my $hung;

        for (;;) {
            if ($self->{master}) {
                my $r = waitpid($master, WNOHANG);
                last if $r == $master || $r < 0;

            } else {
                last unless _alive($master);
            }

            if (time > $deadline) {
                $hung //= sprintf "master %d still running %.0fs after "
                                  . "SIGQUIT (workers: %s)", $master,
                                  time - $t0,
                                  join(', ', map { "$_->[0] $_->[1]" }
                                             $self->_children) || '-';
                kill $signal, $master;
                $deadline = time + 5;
                $signal = 'KILL';
            }

            sleep 0.02;
        }

        # a graceful shutdown that hangs is a defect, not a detail: the
        # master was killed to go on, and the test says so
        if ($hung && !$opts{no_check}) {
            fail("$self->{name}: nginx quits within ${QUIT_SECONDS}s of "
                 . 'SIGQUIT');
            diag("$self->{name}: $hung");
            $self->{dir}{keep} = 1;

        } elsif ($hung) {
            push @{$self->{pending_bad}}, "graceful shutdown hung: $hung";
        }
    }

    $self->{master} = undef;

    $self->check_log("$self->{name} stopped") unless $opts{no_check};

    return $self;
}


# ---- error log ------------------------------------------------------------

sub allow_log {
    my ($self, @re) = @_;

    push @{$self->{allow}}, @re;

    return $self;
}


sub error_log {
    my ($self) = @_;

    return $self->log_since(0);
}


sub log_mark {
    my ($self) = @_;

    return -s $self->error_log_path || 0;
}


sub log_since {
    my ($self, $mark) = @_;

    open my $fh, '<', $self->error_log_path or return '';
    seek $fh, $mark || 0, SEEK_SET;
    local $/;
    my $text = <$fh>;

    return defined $text ? $text : '';
}


sub wait_for_log {
    my ($self, $re, $seconds, $mark) = @_;

    my $deadline = time + (defined $seconds ? $seconds : 5);

    for (;;) {
        for my $line (split /\n/, $self->log_since($mark || 0)) {
            return $line if $line =~ $re;
        }

        return undef if time > $deadline;
        sleep 0.05;
    }
}


sub bad_log_lines {
    my ($self, $mark) = @_;

    my $text = $self->log_since($mark);

    if (-s "$self->{prefix}/stderr.log") {
        open my $fh, '<', "$self->{prefix}/stderr.log";
        local $/;
        my $err = <$fh>;
        $text .= "\n" . substr($err, $self->{stderr_off} || 0);
    }

    my @bad;

    LINE: for my $line (split /\n/, $text) {
        next unless $line =~ $BAD_LOG;

        for my $re (@{$self->{allow}}) {
            next LINE if $line =~ $re;
        }

        push @bad, $line;
    }

    return @bad;
}


sub check_log {
    my ($self, $what) = @_;

    my @bad = (@{delete $self->{pending_bad} || []},
               $self->bad_log_lines($self->{log_off}));

    $self->{log_off} = $self->log_mark;
    $self->{stderr_off} = -s "$self->{prefix}/stderr.log" || 0;
    $self->{log_dirty} = 0;

    my $ok = ok(!@bad, ($what || $self->{name})
                . ": no alert/crit/emerg or sanitizer line in the error log");

    diag(join "\n", "bad lines in $self->{prefix}/error.log:", @bad)
        if @bad;

    return $ok;
}


# ---- HTTP -----------------------------------------------------------------

sub get {
    my ($self, $port, $path, $headers, %opts) = @_;

    return $self->request('GET', $port, $path, $headers, %opts);
}


sub request {
    my ($self, $method, $port, $path, $headers, %opts) = @_;

    my $key = join ':', ($opts{keep_alive} ? 1 : 0),
                        ($opts{local_address} || '');

    my $http = $opts{keep_alive} ? $self->{tiny}{$key} : undef;

    $http ||= HTTP::Tiny->new(
        keep_alive => $opts{keep_alive} ? 1 : 0,
        timeout    => $opts{timeout} || 10,
        max_redirect => 0,
        $opts{local_address} ? (local_address => $opts{local_address}) : (),
    );

    $self->{tiny}{$key} = $http if $opts{keep_alive};

    my %args = (headers => { %{$headers || {}} });
    $args{content} = $opts{content} if defined $opts{content};

    return $http->request($method, "http://127.0.0.1:$port$path", \%args);
}


sub decision {
    my ($res) = @_;

    my $h = $res->{headers} || {};
    my ($side, $origin) = split ' ', (defined $res->{content}
                                      ? $res->{content} : '');

    my %d = (
        status   => $res->{status},
        side     => $side,
        origin   => $origin,
        variant  => $h->{'x-canary-variant'},
        reason   => $h->{'x-canary-reason'},
        bucket   => $h->{'x-canary-bucket'},
        weight   => $h->{'x-canary-weight'},
        upstream => $h->{'x-canary-upstream'},
        pid      => $h->{'x-worker-pid'},
    );

    return \%d;
}


sub route {
    my ($self, $port, $path, $headers, %opts) = @_;

    return decision($self->get($port, $path, $headers, %opts));
}


sub route_many {
    my ($self, $port, $reqs, %opts) = @_;

    return [ map { decision($_) } @{$self->request_many($port, $reqs, %opts)} ];
}


sub _request_bytes {
    my ($req) = @_;

    my $method = $req->{method} || 'GET';
    my $path = defined $req->{path} ? $req->{path} : '/';
    my $h = $req->{headers} || [];
    my @pairs = ref $h eq 'HASH' ? map { ($_ => $h->{$_}) } sort keys %$h
                                 : @$h;

    my $bytes = "$method $path HTTP/1.1\r\nHost: localhost\r\n";

    while (@pairs) {
        my ($k, $v) = splice @pairs, 0, 2;

        for my $one (ref $v eq 'ARRAY' ? @$v : $v) {
            $bytes .= "$k: $one\r\n";
        }
    }

    return "$bytes\r\n";
}


# parses one response at the start of $$buf; undef when incomplete
sub _parse_response {
    my ($buf, $method, $eof) = @_;

    my $end = index $$buf, "\r\n\r\n";
    return undef if $end < 0;

    my $head = substr $$buf, 0, $end;
    my @lines = split /\r\n/, $head;
    my $status_line = shift @lines;

    my ($status) = $status_line =~ m{^HTTP/\d\.\d\s+(\d{3})}
        or die "CanaryTest: bad status line: $status_line\n";

    my %headers;

    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
        $k = lc $k;

        if (exists $headers{$k}) {
            $headers{$k} = [ ref $headers{$k} ? @{$headers{$k}}
                                              : $headers{$k}, $v ];
        } else {
            $headers{$k} = $v;
        }
    }

    my $pos = $end + 4;
    my $content = '';

    my $te = $headers{'transfer-encoding'};

    if ($method eq 'HEAD' || $status =~ /^(?:1\d\d|204|304)$/) {
        # no body

    } elsif (defined $te && $te =~ /chunked/i) {
        for (;;) {
            my $nl = index $$buf, "\r\n", $pos;
            return undef if $nl < 0;

            my $size = hex substr($$buf, $pos, $nl - $pos);
            $pos = $nl + 2;

            if ($size == 0) {
                my $tend = index $$buf, "\r\n", $pos;
                return undef if $tend < 0;
                $pos = $tend + 2;
                last;
            }

            return undef if length($$buf) < $pos + $size + 2;
            $content .= substr $$buf, $pos, $size;
            $pos += $size + 2;
        }

    } elsif (defined $headers{'content-length'}) {
        my $len = $headers{'content-length'};
        return undef if length($$buf) < $pos + $len;
        $content = substr $$buf, $pos, $len;
        $pos += $len;

    } else {
        return undef unless $eof;
        $content = substr $$buf, $pos;
        $pos = length $$buf;
    }

    substr($$buf, 0, $pos) = '';

    return { status => $status, headers => \%headers, content => $content,
             success => $status =~ /^2/ ? 1 : 0 };
}


sub _connect {
    my ($port, %opts) = @_;

    return IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => 5,
        $opts{local_address} ? (LocalAddr => $opts{local_address}) : (),
    );
}


# reads into $$buf; returns bytes read, 0 on EOF, dies on timeout
sub _read_some {
    my ($sock, $buf, $timeout) = @_;

    my $sel = IO::Select->new($sock);

    for (;;) {
        die "CanaryTest: read timeout\n" unless $sel->can_read($timeout);

        my $n = sysread $sock, $$buf, 65536, length $$buf;
        next if !defined $n && $! == EINTR;

        return defined $n ? $n : 0;
    }
}


# pipelined keep-alive requests on one connection per batch
sub _pipeline {
    my ($port, $reqs, %opts) = @_;

    my @res;
    my $batch = $opts{batch} || 64;
    my $timeout = $opts{timeout} || 10;
    my $i = 0;
    my $retries = 0;

    while ($i < @$reqs) {
        my $n = @$reqs - $i < $batch ? @$reqs - $i : $batch;
        my @part = @$reqs[$i .. $i + $n - 1];

        my $sock = _connect($port,
                            local_address => $part[0]{local_address}
                                             || $opts{local_address})
            or die "CanaryTest: connect 127.0.0.1:$port: $!\n";

        my $out = join '', map { _request_bytes($_) } @part;

        while (length $out) {
            my $w = syswrite $sock, $out;
            die "CanaryTest: write: $!\n" unless defined $w;
            substr($out, 0, $w) = '';
        }

        my $buf = '';
        my $got = 0;
        my $eof = 0;

        while ($got < $n) {
            my $r = _parse_response(\$buf, $part[$got]{method} || 'GET', $eof);

            if ($r) {
                push @res, $r;
                $got++;
                next;
            }

            last if $eof;
            $eof = 1 if _read_some($sock, \$buf, $timeout) == 0;
        }

        close $sock;

        # the server closed early (keepalive_requests): resend the rest
        if ($got == 0 && ++$retries > 3) {
            die "CanaryTest: 127.0.0.1:$port closes without answering\n";
        }

        $retries = 0 if $got;
        $i += $got;
    }

    return \@res;
}


sub request_many {
    my ($self, $port, $reqs, %opts) = @_;

    local $?;    # leave the script's exit status alone

    my $clients = $opts{clients} || 2;
    $clients = @$reqs if $clients > @$reqs;

    return [] unless @$reqs;

    return _pipeline($port, $reqs, %opts) if $clients <= 1;

    # contiguous slices, one per client
    my $per = int((@$reqs + $clients - 1) / $clients);
    my %kids;

    for my $c (0 .. $clients - 1) {
        my $from = $c * $per;
        last if $from >= @$reqs;
        my $to = $from + $per - 1;
        $to = $#$reqs if $to > $#$reqs;

        my $file = "$self->{prefix}/tmp/client.$$.$c";
        my $pid = fork;
        die "CanaryTest: fork: $!\n" unless defined $pid;

        if ($pid == 0) {
            my $rc = 0;
            eval {
                nstore(_pipeline($port, [ @$reqs[$from .. $to] ], %opts),
                       $file);
                1;
            } or do { print STDERR $@; $rc = 1 };
            _exit($rc);
        }

        $kids{$pid} = [$file, $from, $to];
    }

    my @res;
    my @errors;

    for my $pid (keys %kids) {
        waitpid $pid, 0;
        my ($file, $from, $to) = @{$kids{$pid}};

        if ($? != 0 || !-f $file) {
            push @errors, "client $pid for requests $from..$to failed";
            next;
        }

        my $part = retrieve($file);
        unlink $file;
        @res[$from .. $to] = @$part;
    }

    die "CanaryTest: " . join("; ", @errors) . "\n" if @errors;

    return \@res;
}


sub raw_request {
    my ($self, $port, $bytes, %opts) = @_;

    my $timeout = $opts{timeout} || 10;

    my $sock = _connect($port, %opts)
        or die "CanaryTest: connect 127.0.0.1:$port: $!\n";

    my $out = $bytes;

    while (length $out) {
        my $w = syswrite $sock, $out;
        last unless defined $w;     # the server may close on bad input
        substr($out, 0, $w) = '';
    }

    my $buf = '';
    my $eof = 0;
    my $res;

    for (;;) {
        my $copy = $buf;
        $res = eval { _parse_response(\$copy, $opts{method} || 'GET', $eof) };
        last if $res || $eof;

        my $n = eval { _read_some($sock, \$buf, $timeout) };
        $eof = 1 unless $n;
    }

    close $sock;

    $res ||= { status => 0, headers => {}, content => '' };
    $res->{raw} = $buf;

    return $res;
}


# ---- Redis and helpers ----------------------------------------------------

sub redis_port {
    my ($self) = @_;

    return $self->port('redis');
}


sub redis_start {
    my ($self, @extra) = @_;

    local $?;    # leave the script's exit status alone

    die "CanaryTest: redis already running\n" if $self->{redis};

    my $port = $self->redis_port;
    my $dir = "$self->{prefix}/redis";

    make_path($dir);

    my $pid = fork;
    die "CanaryTest: fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/stdout.log";
        open STDERR, '>&', \*STDOUT;
        exec 'redis-server', '--port', $port, '--bind', '127.0.0.1',
             '--dir', $dir, '--save', '', '--appendonly', 'no',
             '--daemonize', 'no', '--logfile', "$dir/redis.log", @extra
            or _exit(127);
    }

    $self->{redis} = $pid;

    my $deadline = time + 10;

    for (;;) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{redis} = undef;
            die "CanaryTest: redis-server exited:\n" . `cat $dir/*.log`;
        }

        my $s = _connect($port);

        if ($s) {
            print $s "PING\r\n";
            my $line = '';
            my $sel = IO::Select->new($s);
            sysread($s, $line, 64) if $sel->can_read(1);
            close $s;
            last if $line =~ /^\+PONG/;
        }

        die "CanaryTest: redis-server does not answer PING\n"
            if time > $deadline;

        sleep 0.02;
    }

    return $port;
}


sub redis_cli {
    my ($self, @args) = @_;

    die "CanaryTest: redis is not running\n" unless $self->{redis};

    my ($rc, $out) = _run('redis-cli', '-h', '127.0.0.1',
                          '-p', $self->redis_port, @args);

    die "CanaryTest: redis-cli @args: exit $rc: $out\n" if $rc != 0;

    chomp $out;

    # one reply line a line; an empty last value (a field of a hash set
    # to "") is a line too
    return wantarray ? split(/\n/, $out, -1) : $out;
}


sub redis_stop {
    my ($self) = @_;

    my $pid = delete $self->{redis} or return;

    _stop_pid($pid);
}


sub spawn {
    my ($self, @cmd) = @_;

    local $?;    # leave the script's exit status alone

    my $pid = fork;
    die "CanaryTest: fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        exec @cmd or _exit(127);
    }

    push @{$self->{helpers}}, $pid;

    return $pid;
}


sub _stop_pid {
    my ($pid) = @_;

    local $?;    # leave the script's exit status alone

    kill 'TERM', $pid;

    my $deadline = time + 5;

    until (waitpid($pid, WNOHANG) == $pid || !_alive($pid)) {
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            last;
        }

        sleep 0.02;
    }
}


# ---- teardown -------------------------------------------------------------

sub teardown {
    my ($self) = @_;

    return if $self->{torn} || $$ != $self->{owner};
    $self->{torn} = 1;

    # waitpid below changes $?: keep the script's exit status
    local $?;

    if ($self->{running}) {
        $self->stop(no_check => 1);
    }

    $self->redis_stop;
    _stop_pid($_) for @{$self->{helpers}};

    # a log nobody checked: report bad lines only (done_testing may be over)
    my @bad = (@{delete $self->{pending_bad} || []},
               $self->bad_log_lines($self->{log_off}));

    if (@bad) {
        ok(0, "$self->{name}: no alert/crit/emerg or sanitizer line in "
              . "the error log");
        diag(join "\n", "bad lines in $self->{prefix}/error.log:", @bad);
        $self->{dir}{keep} = 1;
    }
}


sub DESTROY {
    my ($self) = @_;

    local ($?, $@, $!);
    $self->teardown;
}


# the prefixes are removed only here, when the outcome of the file is known
# (an object may be destroyed earlier, while a die unwinds)
END {
    return if $$ != $OWNER;

    my $exit = $?;

    for my $t (@INSTANCES) {
        $t->teardown if $t;
    }

    my $passing = Test::More->builder->is_passing && !$exit;

    for my $dir (@DIRS) {
        if ($passing && !$dir->{keep} && !$ENV{CANARY_KEEP}) {
            remove_tree($dir->{prefix});

        } else {
            diag("$dir->{name}: kept $dir->{prefix}");
        }
    }

    $? = $exit;
}


# ---- bucket formula -------------------------------------------------------

# 32-bit multiply without overflowing Perl's 64-bit integers
sub _mul32 {
    my ($a, $b) = @_;

    return (($a * ($b & 0xffff))
            + ((($a * ($b >> 16)) & 0xffff) << 16)) & 0xffffffff;
}


sub murmur2 {
    my ($data) = @_;

    if (utf8::is_utf8($data)) {
        $data = "$data";
        utf8::encode($data);
    }

    my $m = 0x5bd1e995;
    my $len = length $data;
    my $h = $len & 0xffffffff;
    my $words = $len >> 2;

    for my $k (unpack "V$words", $data) {
        $k = _mul32($k, $m);
        $k ^= $k >> 24;
        $k = _mul32($k, $m);

        $h = _mul32($h, $m);
        $h ^= $k;
    }

    my @tail = unpack 'C*', substr($data, $words * 4);

    if (@tail) {
        $h ^= $tail[2] << 16 if @tail >= 3;
        $h ^= $tail[1] << 8 if @tail >= 2;
        $h ^= $tail[0];
        $h = _mul32($h, $m);
    }

    $h ^= $h >> 13;
    $h = _mul32($h, $m);
    $h ^= $h >> 15;

    return $h;
}


sub bucket {
    my ($salt, $key) = @_;

    $salt = '' unless defined $salt;

    my $data = "$salt:$key";

    return (murmur2($data) * 10000) >> 32;
}


sub is_canary {
    my ($salt, $key, $weight) = @_;

    return bucket($salt, $key) < int($weight * 100 + 0.5) ? 1 : 0;
}


# ---- percentiles ----------------------------------------------------------

sub quantile {
    my ($counts, $le, $q) = @_;

    my $total = 0;
    $total += $_ for @$counts;

    return undef unless $total;

    my $rank = POSIX::ceil($q * $total) || 1;
    my $seen = 0;

    for my $i (0 .. $#$counts) {
        $seen += $counts->[$i];
        next if $seen < $rank;
        return undef unless defined $le->[$i];      # +Inf
        return (($i ? $le->[$i - 1] : 0) + $le->[$i]) / 2;
    }

    return undef;
}


1;
