package RedisStory;

=head1 NAME

RedisStory - the scaffolding the Redis, guard and canary-ctl stories share,
on top of CanaryTest

=head1 SYNOPSIS

    use FindBin;
    use lib "$FindBin::Bin/lib";
    use Test::More;
    use CanaryTest;
    use RedisStory qw(:all);

    my $t = CanaryTest->new;
    my $redis = '127.0.0.1:' . $t->redis_start;

    $t->write_conf(redis_split_conf($t,
                       redis => "$redis interval=200ms timeout=200ms"),
                   workers => 4);
    $t->start;

    my ($rc, $out) = canary_ctl($redis, 'set-weight', 'app', 30);
    ok wait_until(3, sub { status_json($t)->{splits}{app}{weight} == 30 }),
        'synced';

    my $load = Traffic->start(port => $t->port('http'), clients => 3,
                              tenants => 300, record => 1);
    ...
    served_ok($load->stop->{records});

    $t->stop;
    done_testing;

=head1 DESCRIPTION

Every function takes the L<CanaryTest> instance it works on (when it
needs one) and uses its C<http> port, C<< $t->port('http') >>, as the port
of the front server where the splits are.  Nothing is exported by
default: import the names, or C<:all>.  Core Perl only: Test::More,
JSON::PP, POSIX, Time::HiRes, plus CanaryTest.

=head1 FUNCTIONS

=head2 nginx.conf pieces

=over

=item split_block($name, $stable, $canary, $weight, @lines)

A C<canary_split> block: C<stable>, C<canary>, C<weight> and the given
extra directives (C<"guard error_rate=10 ...">, C<"cookie canary_pref">,
...), each line given without its C<;>.

=item canary_location($path, $split)

A C<location> that routes by the split: C<canary $split>, the headers of
C<CanaryTest::expose_vars()> and C<proxy_pass http://$canary_upstream>.

=item front_server($t, %opts)

The C<server> on C<< $t->port('http') >> with a C<canary_location> for
each C<< locations => [ [$path, $split], ... ] >> (default
C<< [ ['/', 'app'] ] >>) and C<location = /canary_status>.  Opt C<listen>
adds parameters to the C<listen> directive (e.g. C<reuseport>).

=item redis_split_conf($t, %opts)

The whole http body of a Redis story: C<canary_zone canary 1m>,
C<canary_redis> with the arguments of opt C<redis> (the address and its
parameters), split C<app> (C<stable_up> / C<canary_up>, weight opt
C<weight>, default 5, extra lines opt C<split>, an array ref),
C<< $t->origins >> and C<front_server> (opt C<listen> passed on).

=item fault_origins($t, %opts)

Upstreams C<app_stable> and C<app_canary> with their servers on
C<< $t->port('stable') >> and C<< $t->port('canary') >>, answering
C<"stable app_stable\n"> and C<"canary app_canary\n">, or 500 while a
side's condition (an nginx C<if> condition) holds.  Opts C<stable> and
C<canary> give the conditions; by default the canary fails while the
fault file (C<fault_file>) exists and stable never fails.  Opt
C<upstreams> adds C<< { name => port } >> upstreams (one server each).

=item fault_file($t), fault($t, $on)

The file that switches the default C<fault_origins> canary to 500s, and
switching it on (creating it) or off (removing it).

=back

=head2 Redis, canary-ctl and the status page

=over

=item $RedisStory::CTL

The path of C<scripts/canary-ctl>.

=item canary_ctl($redis, @args)

Runs C<canary-ctl --redis $redis @args> (stderr with stdout, the
environment as it is); returns C<(exit code, output)>.

=item ctl_run($t, $redis, \@args, %env)

canary-ctl as an operator's shell would run it, on C<$redis> through
C<CANARY_REDIS> (so that an argument check that fails to stop it shows in
Redis), C<CANARY_ACTOR=tester>, no other C<CANARY_*> or C<REDISCLI_AUTH>
from the test's environment, C<%env> on top.  Returns (exit code, stdout,
stderr).

=item redis_snapshot($t), redis_connections($t)

Every key of C<$t>'s Redis with its C<DUMP>, as one string, and the
connections it has accepted: a command that must leave Redis untouched
(a usage error) leaves the first equal and the second one up at most.

=item ctl_ok($redis, @args)

C<canary_ctl>, and one test: C<is $rc, 0, "canary-ctl @args">, with the
output as diagnostics when it fails.  Returns what C<is> returned.

=item status_json($t)

The status page (C</canary_status>) decoded, or undef when it does not
answer 200.

=item status_text($t, $format)

The text of C</canary_status?format=$format>.

=item weight_of($t, $tenant)

The C<$canary_weight> a request of C<$tenant> (default C<probe>) routes
at, C<''> when there is none.

=item subscribe($t, $channel, $file)

A helper process (C<< $t->spawn >>) running C<redis-cli SUBSCRIBE
$channel> on the instance's Redis, its output in C<$file>.

=back

=head2 The fleet: node records

=over

=item node_record(%fields)

A node's record (README, "The fleet") as a hash ref: C<v> 1, the
histogram layout, node C<web-1> of split C<app>, generation 1, weight 5,
guard armed, C<interval_ms> 1000, each side with C<window_s> 10 and
C<window_requests> 0; C<%fields> on top (C<stable> and C<canary> replace
the side entirely when given).

=item report_node($t, $split, $node, %opts)

Writes node C<$node>'s record of C<$split> into C<$t>'s Redis as nginx
does (one C<EVAL>: C<SET> the record C<PX> ttl, C<ZADD> the node to
C<< <prefix><split>:nodes >> scored Redis' C<TIME> + ttl, the ttl 3
intervals): by hand, for a story that needs a node no nginx is.  Opts:
C<record> (a hash ref for C<node_record>, or the raw string to store),
C<age_ms> (it reported that long ago: default 0), C<interval_ms> (default
the record's, else 1000), C<prefix> (default C<canary:>), C<cli> (the
arguments that go before the command to C<< $t->redis_cli >>, e.g.
C<< [ '-n', 2 ] >>).

=item live_nodes($t, $split, %opts)

The members of the split's nodes set that score above Redis' C<TIME>
(live), sorted.  Opts C<prefix>, C<cli> as for C<report_node>.

=item wait_nodes($redis, $split, $n, %opts)

Waits until C<canary-ctl --redis $redis fleet $split --json> lists at
least C<$n> nodes, at most opt C<seconds> (default 10); opt C<ctl> (an
array ref) gives canary-ctl options that go before C<fleet>
(C<--prefix>, C<--db>, C<--password-file>).  What a story that runs
nginx does before its first canary-ctl change, which is refused while no
nginx reports the split (nginx reports every C<interval>, the first one
an interval after it starts).  Returns what C<wait_until> returns.

=back

=head2 Waiting and sampling

=over

=item wait_until($seconds, $cond, $every)

Calls C<$cond> until it returns true, sleeping C<$every> seconds
(default 0.02) between the calls.  Returns the seconds it took, or undef
when C<$seconds> went by first.

=item sample_until($until, $every, $code)

Calls C<$code> then sleeps C<$every> seconds, as long as the time is
before C<$until> (an epoch time, as C<Time::HiRes::time>).  Returns how
many times it called C<$code>.

=back

=head2 Load

The load itself comes from L<Traffic> (C<< record => 1 >>).

=over

=item served_ok($rec)

Two tests on the C<records> of a L<Traffic> run: C<no request failed>
(every status 200; the first five others as diagnostics) and C<every
response came from the variant chosen> (C<side> equals C<variant>).

=back

=head2 The guard, held by gdb

=over

=item gdb_on_guard($t, $pid, @then)

gdb attaches to worker C<$pid> and stops it right after it next writes
the first split's guard state (a hardware watchpoint on the word), says
so by creating the file C<$paused>, then runs the gdb commands C<@then>
(C<'kill'>; or a shell wait and C<'detach'>).  Returns C<($gdb_pid,
$paused)> once the watchpoint is set, or dies with gdb's output.  A
window of a few instructions is made to happen rather than waited for.

=back

=head2 Logs and files

=over

=item grep_lines($re, $text)

The lines of C<$text> that match; their number in scalar context.

=item log_lines($t, $re, $mark)

C<grep_lines> on the error log after the offset C<$mark> (default 0, the
whole log).

=item write_file($path, $text)

Writes (replaces) a file.

=back

=cut

use strict;
use warnings;

use Exporter qw(import);
use JSON::PP;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);

use CanaryTest;

our @EXPORT_OK = qw(split_block canary_location front_server
                    redis_split_conf fault_origins fault_file fault
                    canary_ctl ctl_run ctl_ok redis_snapshot
                    redis_connections status_json status_text weight_of
                    subscribe wait_until sample_until served_ok
                    gdb_on_guard grep_lines log_lines write_file
                    node_record report_node live_nodes wait_nodes);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

our $CTL = "$CanaryTest::ROOT/scripts/canary-ctl";


# ---- nginx.conf pieces -----------------------------------------------------

sub split_block {
    my ($name, $stable, $canary, $weight, @lines) = @_;

    return "    canary_split $name {\n"
           . "        stable $stable;\n"
           . "        canary $canary;\n"
           . "        weight $weight;\n"
           . join('', map { "        $_;\n" } @lines)
           . "    }\n";
}


sub canary_location {
    my ($path, $split) = @_;

    return "        location $path {\n"
           . "            canary $split;\n"
           . CanaryTest::expose_vars()
           . "            proxy_pass http://\$canary_upstream;\n"
           . "        }\n\n";
}


sub front_server {
    my ($t, %opts) = @_;

    my $port = $t->port('http');
    my $listen = $opts{listen} ? " $opts{listen}" : '';
    my $locations = join '', map { canary_location(@$_) }
                             @{$opts{locations} || [ ['/', 'app'] ]};

    return <<"EOF";
    server {
        listen 127.0.0.1:$port$listen;

$locations        location = /canary_status {
            canary_status;
        }
    }
EOF
}


sub redis_split_conf {
    my ($t, %opts) = @_;

    return "    canary_zone canary 1m;\n"
           . "    canary_redis $opts{redis};\n\n"
           . split_block('app', 'stable_up', 'canary_up',
                         $opts{weight} // 5, @{$opts{split} || []})
           . "\n" . $t->origins
           . front_server($t, listen => $opts{listen});
}


sub fault_origins {
    my ($t, %opts) = @_;

    my %fail = (stable => undef, canary => '-f ' . fault_file($t), %opts);
    my %ups = (app_stable => $t->port('stable'),
               app_canary => $t->port('canary'),
               %{$opts{upstreams} || {}});

    my $text = join '', map { "    upstream $_ { server 127.0.0.1:$ups{$_}; }\n" }
                        sort keys %ups;

    for my $side (qw(stable canary)) {
        my $port = $t->port($side);
        my $if = defined $fail{$side} ? <<"EOF" : '';
            if ($fail{$side}) {
                return 500;
            }

EOF
        $text .= <<"EOF";

    server {
        listen 127.0.0.1:$port;

        location / {
$if            return 200 "$side app_$side\\n";
        }
    }
EOF
    }

    return $text;
}


sub fault_file {
    my ($t) = @_;

    return $t->prefix . '/fault';
}


sub fault {
    my ($t, $on) = @_;

    my $file = fault_file($t);

    if ($on) {
        open my $fh, '>', $file or die "$file: $!";
        close $fh;
    } else {
        unlink $file;
    }
}


# ---- Redis, canary-ctl and the status page ---------------------------------

sub canary_ctl {
    my ($redis, @args) = @_;

    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec $CTL, '--redis', $redis, @args or _exit(127);
    }

    local $/;
    my $out = <$fh> // '';
    close $fh;

    return ($? >> 8, $out);
}


sub ctl_run {
    my ($t, $redis, $args, %env) = @_;

    my $dir = $t->prefix . '/tmp';
    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/ctl.out";
        open STDERR, '>', "$dir/ctl.err";
        $ENV{CANARY_REDIS} = $redis;
        $ENV{CANARY_ACTOR} = 'tester';
        delete @ENV{qw(CANARY_PREFIX CANARY_REDIS_DB
                       CANARY_REDIS_PASSWORD_FILE REDISCLI_AUTH)};
        @ENV{keys %env} = values %env;
        exec $CTL, @$args or _exit(127);
    }

    waitpid $pid, 0;
    my $rc = $? >> 8;

    local $/;
    open my $o, '<', "$dir/ctl.out";
    open my $e, '<', "$dir/ctl.err";

    return ($rc, <$o> // '', <$e> // '');
}


sub redis_snapshot {
    my ($t) = @_;

    my @keys = sort($t->redis_cli('KEYS', '*'));

    return join "\n", map { ("$_:", scalar $t->redis_cli('DUMP', $_)) }
                      @keys;
}


sub redis_connections {
    my ($t) = @_;

    return $t->redis_cli('INFO', 'stats')
           =~ /total_connections_received:(\d+)/ ? $1 : -1;
}


sub ctl_ok {
    my ($redis, @args) = @_;

    my ($rc, $out) = canary_ctl($redis, @args);

    local $Test::Builder::Level = $Test::Builder::Level + 1;

    return is($rc, 0, "canary-ctl @args") || diag $out;
}


sub status_json {
    my ($t) = @_;

    my $r = $t->get($t->port('http'), '/canary_status');

    return $r->{status} == 200 ? decode_json($r->{content}) : undef;
}


sub status_text {
    my ($t, $format) = @_;

    return $t->get($t->port('http'), "/canary_status?format=$format")
             ->{content};
}


sub weight_of {
    my ($t, $tenant) = @_;

    return $t->route($t->port('http'), '/',
                     { 'X-Tenant-Id' => $tenant // 'probe' })->{weight} // '';
}


sub subscribe {
    my ($t, $channel, $file) = @_;

    return $t->spawn('sh', '-c', "exec redis-cli -h 127.0.0.1 -p "
                     . $t->redis_port . " SUBSCRIBE $channel > $file 2>&1");
}


# ---- the fleet: node records -----------------------------------------------

sub node_record {
    my (%fields) = @_;

    my %side = (requests => 0, responses => [0, 0, 0, 0, 0],
                upstream_errors => 0, latency => '',
                window_s => 10, window_requests => 0);

    return { v => 1, node => 'web-1', instance => '1765100000.4242',
             pid => 4243, split => 'app', generation => 1, weight => 5,
             enabled => JSON::PP::true, guard_tripped => JSON::PP::false,
             created => 1765100000, interval_ms => 1000,
             hist => 'us64x16x20',
             stable => { %side }, canary => { %side }, %fields };
}


# Redis' TIME in ms
sub _redis_ms {
    my ($t, $cli) = @_;

    my ($s, $us) = $t->redis_cli(@{$cli || []}, 'TIME');

    return $s * 1000 + int($us / 1000);
}


# SET the record PX ttl - age, ZADD the node at TIME + ttl - age
my $REPORT_LUA = <<'LUA';
local t = redis.call("TIME")
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3]) - tonumber(ARGV[4])
if ttl > 0 then
    redis.call("SET", KEYS[1], ARGV[1], "PX", ttl)
end
redis.call("ZADD", KEYS[2], ms + ttl, ARGV[2])
return 1
LUA


sub report_node {
    my ($t, $split, $node, %opts) = @_;

    my $prefix = $opts{prefix} // 'canary:';
    my $rec = $opts{record} // node_record(node => $node, split => $split);
    my $interval = $opts{interval_ms}
                   // (ref $rec ? $rec->{interval_ms} : undef) // 1000;

    $rec = JSON::PP->new->canonical->encode($rec) if ref $rec;

    $t->redis_cli(@{$opts{cli} || []}, 'EVAL', $REPORT_LUA, 2,
                  "$prefix$split:node:$node", "$prefix$split:nodes", $rec,
                  $node, 3 * $interval, $opts{age_ms} // 0);
}


sub live_nodes {
    my ($t, $split, %opts) = @_;

    my $prefix = $opts{prefix} // 'canary:';
    my $now = _redis_ms($t, $opts{cli});

    return sort grep { length } $t->redis_cli(@{$opts{cli} || []},
        'ZRANGEBYSCORE', "$prefix$split:nodes", "($now", '+inf');
}


sub wait_nodes {
    my ($redis, $split, $n, %opts) = @_;

    return wait_until($opts{seconds} // 10, sub {
        my ($rc, $out) = canary_ctl($redis, @{$opts{ctl} || []}, 'fleet',
                                    $split, '--json');
        my ($json) = $out =~ /^(\{.*\})$/m;
        my $doc = $rc == 0 && $json ? eval { decode_json($json) } : undef;

        return $doc && @{$doc->{nodes}} >= $n;
    }, 0.05);
}


# ---- waiting and sampling --------------------------------------------------

sub wait_until {
    my ($seconds, $cond, $every) = @_;

    my $t0 = time;

    until ($cond->()) {
        return undef if time - $t0 > $seconds;
        sleep($every // 0.02);
    }

    return time - $t0;
}


sub sample_until {
    my ($until, $every, $code) = @_;

    my $samples = 0;

    while (time < $until) {
        $code->();
        $samples++;
        sleep $every;
    }

    return $samples;
}


# ---- load ------------------------------------------------------------------

sub served_ok {
    my ($rec) = @_;

    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my @failed = grep { $_->{status} != 200 } @$rec;
    my @wrong_side = grep { $_->{variant} ne $_->{side} } @$rec;

    is scalar(@failed), 0, 'no request failed'
        or diag explain [ @failed[0 .. ($#failed < 4 ? $#failed : 4)] ];
    is scalar(@wrong_side), 0, 'every response came from the variant chosen';
}


# ---- the guard, held by gdb -------------------------------------------------

sub gdb_on_guard {
    my ($t, $pid, @then) = @_;

    my $paused = $t->prefix . "/gdb-paused-$pid";
    my $out = $t->prefix . "/gdb-$pid.out";
    my $text = sub { -e $out ? do { local (@ARGV, $/) = ($out); <> } : '' };

    my $gdb = $t->spawn('sh', '-c', join(' ', 'exec gdb -q -batch -nx',
        '-p', $pid,
        "-ex 'set pagination off'",
        "-ex 'break ngx_http_canary_guard_check'",
        "-ex 'continue'",
        "-ex 'delete'",
        "-ex 'watch -l ((ngx_http_canary_split_t **) "
            . "cmcf->splits.elts)[0]->sh->guard_tripped'",
        "-ex 'continue'",
        "-ex 'shell touch $paused'",
        (map { "-ex '$_'" } @then),
        "> $out 2>&1 < /dev/null"));

    wait_until(20, sub { $text->() =~ /atchpoint \d+: / }, 0.1)
        or die "gdb did not set its watchpoint:\n" . $text->();

    return ($gdb, $paused);
}


# ---- logs and files --------------------------------------------------------

sub grep_lines {
    my ($re, $text) = @_;

    return grep { $_ =~ $re } split /\n/, $text;
}


sub log_lines {
    my ($t, $re, $mark) = @_;

    return grep_lines($re, $t->log_since($mark || 0));
}


sub write_file {
    my ($path, $text) = @_;

    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh;
}


1;
