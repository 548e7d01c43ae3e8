#!/usr/bin/perl

# Story: the configurations we hand to operators in conf-examples/ are
# complete and valid.  Each nginx one, with only a load_module line put in
# front of it, passes "nginx -p PREFIX -t" against the module we build,
# without a warning; none hides an absolute path that only works on one
# machine.  The Prometheus configuration, its rules and the rules' unit
# tests pass promtool; every metric and label that the rules and the
# Grafana dashboard ask for is one that a real nginx with the module
# exports; the docker compose example parses, mounts files that exist
# where the image reads them, and gives the sidecar a command line it
# accepts, for a split, a status location and a Redis that the mounted
# configuration has.  So does the sidecar command line in the comments of
# redis-sidecar.conf.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use CPAN::Meta::YAML;
use JSON::PP;
use POSIX ();
use Test::More;
use CanaryTest;

my $dir = "$CanaryTest::ROOT/conf-examples";

my @required = qw(
    tenant-split-by-header.conf
    cohorts.conf
    overrides-trusted-sources.conf
    several-splits.conf
    standalone.conf
    redis-sidecar.conf
    guard.conf
    prometheus.yml
    prometheus-rules.yml
    prometheus-rules.test.yml
    grafana-dashboard.json
    docker-compose.example.yml
);

ok(-f "$dir/$_", "conf-examples/$_ exists") for @required;

my @files = sort glob "$dir/*.conf";

for my $file (@files) {
    (my $name = $file) =~ s{.*/}{};

    open my $fh, '<', $file or die "$file: $!";
    my $text = do { local $/; <$fh> };
    close $fh;

    unlike($text, qr/^\s*load_module\b/m,
           "$name: leaves load_module to the installation");

    my $comments = () = $text =~ /^\s*#/mg;
    ok($comments >= 5, "$name: is commented ($comments comment lines)");

    my @absolute = grep { !/^\s*#/
                          && /^\s*(?:pid|error_log|access_log|root)\s+\//
                        } split /\n/, $text;
    is("@absolute", '', "$name: pid and log paths are relative to the prefix");

    like($text, qr/^\s*canary_zone\s/m, "$name: has a canary_zone");
    like($text, qr/^\s*canary_split\s/m, "$name: has a canary_split");

    my $t = CanaryTest->new(name => $name);

    $t->write_conf(undef,
                   raw => "load_module " . $t->module_path . ";\n\n$text");

    my ($ok, $out) = $t->nginx_t;

    ok($ok, "$name: nginx -t accepts it") or diag($out);
    unlike($out, qr/\[(?:warn|emerg|alert|crit)\]/,
           "$name: nginx -t has no warning about it");
}

# ---- what a real nginx with the module exports -----------------------------

my %exported = scrape();    # names => {}, labels => {}, values => {l => {}}

my %families = map { (my $f = $_) =~ s/_(?:bucket|sum|count)$//; $f => 1 }
                   keys %{$exported{names}};
ok(keys %families >= 10, 'a real nginx exports the metric families ('
   . join(' ', sort keys %families) . ')');

# labels that Prometheus adds itself; prometheus.yml's target labels below
my %target_labels = map { $_ => 1 } qw(job instance);


# ---- Prometheus: promtool ---------------------------------------------------

SKIP: {
    skip 'promtool is not installed (Debian package prometheus)', 3
        unless have('promtool');

    my ($rc, $out) = run('promtool', 'check', 'config',
                         "$dir/prometheus.yml");
    ok($rc == 0 && $out =~ /SUCCESS/, 'promtool check config prometheus.yml')
        or diag($out);

    ($rc, $out) = run('promtool', 'check', 'rules',
                      "$dir/prometheus-rules.yml");
    ok($rc == 0 && $out =~ /SUCCESS/, 'promtool check rules '
       . 'prometheus-rules.yml') or diag($out);

    ($rc, $out) = run('promtool', 'test', 'rules',
                      "$dir/prometheus-rules.test.yml");
    ok($rc == 0 && $out =~ /SUCCESS/, 'promtool test rules: the alerts fire '
       . 'when they should, and only then') or diag($out);
}

my $prom = yaml("$dir/prometheus.yml");
my $rules = yaml("$dir/prometheus-rules.yml");

is_deeply($prom->{rule_files}, ['prometheus-rules.yml'],
          'prometheus.yml loads prometheus-rules.yml, beside it');

my ($scrape) = @{$prom->{scrape_configs} || []};
is($scrape->{metrics_path}, '/canary_status', 'scrapes /canary_status');
is_deeply($scrape->{params}, { format => ['prometheus'] },
          '?format=prometheus');
$target_labels{$_} = 1
    for map { keys %{$_->{labels} || {}} } @{$scrape->{static_configs} || []};

my (%recorded, @rule_exprs);

for my $g (@{$rules->{groups} || []}) {
    for my $r (@{$g->{rules} || []}) {
        $recorded{$r->{record}} = 1 if $r->{record};
        push @rule_exprs, [$r->{record} || $r->{alert}, $r->{expr}];
    }
}

my %alerts = map { $_->[0] => 1 } grep { !$recorded{$_->[0]} } @rule_exprs;
ok($alerts{$_}, "prometheus-rules.yml alerts on $_")
    for qw(CanaryErrorRateHigh CanaryLatencyP99High CanaryGuardTripped
           CanaryRedisStale CanarySplitStuck);

for my $r (@rule_exprs) {
    my @bad = unknown_in_promql($r->[1], \%recorded);
    is("@bad", '', "rule $r->[0]: every metric and label it reads is "
       . "exported");
}


# ---- Grafana ----------------------------------------------------------------

my $dash = eval { decode_json(slurp("$dir/grafana-dashboard.json")) };
ok($dash, 'grafana-dashboard.json parses') or diag($@);
$dash ||= {};

my @panels = map { $_, @{$_->{panels} || []} } @{$dash->{panels} || []};
my %ids;
my @exprs;

for my $p (@panels) {
    ok(!$ids{$p->{id}}++, "panel \"$p->{title}\": its own id");
    ok($p->{gridPos} && $p->{gridPos}{x} + $p->{gridPos}{w} <= 24,
       "panel \"$p->{title}\": fits the 24-column grid");

    next if $p->{type} eq 'row';

    ok($p->{description}, "panel \"$p->{title}\": says what it shows");

    for my $t (@{$p->{targets} || []}) {
        push @exprs, [$p->{title}, $t->{expr}];
        is($t->{datasource}{uid} // '', '${datasource}',
           "panel \"$p->{title}\" $t->{refId}: the chosen Prometheus");
        like($t->{expr}, qr/split=~"\$split"/,
             "panel \"$p->{title}\" $t->{refId}: of the chosen split");
    }
}

ok(@exprs >= 10, scalar(@exprs) . ' queries in the dashboard');

my %seen_metric;

for my $e (@exprs) {
    my @bad = unknown_in_promql($e->[1], {});
    is("@bad", '', "panel \"$e->[0]\": every metric and label of "
       . "$e->[1] is exported");
    $seen_metric{$_} = 1 for metrics_in($e->[1]);
}

ok($seen_metric{$_}, "the dashboard shows $_")
    for qw(canary_request_duration_seconds_count
           canary_request_duration_seconds_bucket canary_requests_total
           canary_upstream_errors_total canary_weight_percent
           canary_guard_tripped canary_split_info canary_pinned_tenants);

like(join("\n", map { $_->[1] } @exprs),
     qr/histogram_quantile\(0\.99,.*canary_request_duration_seconds_bucket/,
     'p99 by histogram_quantile over the buckets');

for my $v (@{$dash->{templating}{list} || []}) {
    next unless $v->{type} eq 'query';
    my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};
    my ($inner, $label) = $q =~ /^label_values\((.*),\s*(\w+)\)$/;
    my @bad = unknown_in_promql($inner // 'none', {});
    push @bad, "label $label" unless defined $label
        && ($exported{labels}{$label} || $target_labels{$label});
    is("@bad", '', "variable \$$v->{name}: $q");
}


# ---- docker compose --------------------------------------------------------

my $compose = yaml("$dir/docker-compose.example.yml");
my $svc = $compose->{services} || {};

ok($svc->{$_}, "docker-compose.example.yml has the $_ service")
    for qw(nginx redis sidecar);

SKIP: {
    skip 'python3 with PyYAML is not installed', 1
        unless -x '/usr/bin/python3'
            && run('/usr/bin/python3', '-c', 'import yaml') == 0;

    my ($rc, $out) = run('/usr/bin/python3', '-c',
        'import sys, yaml; [yaml.safe_load(open(f)) for f in sys.argv[1:]]',
        map { "$dir/$_" } qw(docker-compose.example.yml prometheus.yml
                             prometheus-rules.yml prometheus-rules.test.yml));
    is($rc, 0, 'every YAML file parses with PyYAML too') or diag($out);
}

SKIP: {
    skip 'no docker compose client to validate the file with', 1
        unless have('docker-compose');

    my ($rc, $out) = run('docker-compose', '-f',
                         "$dir/docker-compose.example.yml", 'config', '-q');
    is($rc, 0, 'docker-compose config accepts it') or diag($out);
}

# the image reads /etc/nginx/canary.conf (docker/nginx.conf includes it)
my ($include) = slurp("$CanaryTest::ROOT/docker/nginx.conf")
                =~ /^\s*include\s+(\S+);/m;
my %mounts;

for my $name (sort keys %$svc) {
    for my $v (@{$svc->{$name}{volumes} || []}) {
        my ($src, $dst) = split /:/, $v;
        next unless $src =~ m{^\.};
        ok(-e "$dir/$src", "compose $name: mounts $src, which exists");
        $mounts{$name}{$dst} = "$dir/$src";
    }

    like($svc->{$name}{image} // '', qr/:|^nginx-canary$/,
         "compose $name: a tagged image, or the one we build");
}

my $site_file = $mounts{nginx}{$include // ''};
ok($site_file, "compose nginx: a conf-examples file at $include");
my $site = $site_file ? slurp($site_file) : '';
(my $site_nc = $site) =~ s/#[^\n]*//g;

my ($site_redis) = $site_nc =~ /^\s*canary_redis\s+(\S+)/m;
my %site_splits = map { $_ => 1 } $site_nc =~ /^\s*canary_split\s+(\S+)\s*\{/mg;
my ($site_port) = $site_nc =~ /^\s*listen\s+(?:[\d.]+:)?(\d+)/m;

ok($site_redis, 'the compose nginx reads its weights from Redis');
is($svc->{redis}{network_mode} // '', 'service:nginx',
   'Redis shares the nginx container\'s 127.0.0.1');
is($svc->{sidecar}{network_mode} // '', 'service:nginx',
   'so does the sidecar');

my @side = @{$svc->{sidecar}{command} || []};
is($side[0], 'canary-sidecar', 'the sidecar service runs canary-sidecar');
sidecar_accepts("compose sidecar", [@side[1 .. $#side]], $site_nc,
                $site_redis, $site_port);

# the sidecar command line in redis-sidecar.conf's comments
my $rs = slurp("$dir/redis-sidecar.conf");
my ($cmdline) = $rs =~ /^#\s+(canary-sidecar\s(?:[^\n]*\\\n)*[^\n]*)/m;
(my $rs_nc = $rs) =~ s/#[^\n]*//g;
ok($cmdline, 'redis-sidecar.conf shows the sidecar command line');
$cmdline =~ s/\\\n#\s*/ /g if defined $cmdline;
my @words = split ' ', $cmdline // '';
shift @words;
sidecar_accepts('redis-sidecar.conf comments', \@words, $rs_nc,
                ($rs_nc =~ /^\s*canary_redis\s+(\S+)/m)[0],
                ($rs_nc =~ /^\s*listen\s+(?:[\d.]+:)?(\d+)/m)[0]);

# Prometheus in compose scrapes the nginx service, with these files
if (my $p = $svc->{prometheus}) {
    my %m = %{$mounts{prometheus} || {}};
    my ($conf_dst) = grep { $m{$_} =~ m{/prometheus\.yml$} } keys %m;
    my ($rules_dst) = grep { $m{$_} =~ m{/prometheus-rules\.yml$} } keys %m;

    ok($conf_dst && $rules_dst && dirname($conf_dst) eq dirname($rules_dst),
       'compose prometheus: the rules beside prometheus.yml, as it expects');
    ok(grep({ $_ eq "--config.file=$conf_dst" } @{$p->{command} || []}),
       'compose prometheus: runs with that prometheus.yml');

    my @targets = map { @{$_->{targets} || []} }
                      @{$scrape->{static_configs} || []};
    my ($host, $port) = split /:/, $targets[0] // '';
    ok($svc->{$host // ''} && ($port // 0) == ($site_port // -1),
       "prometheus.yml scrapes the compose nginx ($targets[0])");
}


# ---- the plans: one for each seed runbook's ladder ------------------------

# each plan in conf-examples, as canary-sidecar reads it: accepted (a bad
# plan exits 2 naming the field), then the step holds without nginx
my %runbook = (
    'plan-default.json'        => 'the governor\'s defaults',
    'plan-governor.json'       => 'seed 000: a pinned tenant, 5-20-50-100',
    'plan-cohort-ladder.json'  => 'seed 001: internal, friendly, beta, GA',
    'plan-header-stages.json'  => 'seed 002: header overrides, 5-25-50-100',
    'plan-stage-targets.json'  => 'seed 003: per-stage p99, gradual rollback',
    'plan-triggers.json'       => 'seed 004: 1-5-25-50-100, instant/grace',
    'plan-shadow.json'         => 'seed 003: shadow mode first, then 5-50',
);

ok(-f "$dir/$_", "conf-examples/$_ ($runbook{$_}) exists")
    for sort keys %runbook;

SKIP: {
    my $sidecar = $ENV{CANARY_SIDECAR}
                  || "$CanaryTest::ROOT/build/canary-sidecar";
    my @plans = sort glob "$dir/plan-*.json";
    skip "$sidecar is not built", 3 * @plans unless -x $sidecar;

    for my $plan (@plans) {
        (my $name = $plan) =~ s{.*/}{};
        my $json = eval { decode_json(slurp($plan)) };
        ok($json && ref $json->{stages} eq 'ARRAY',
           "$name: JSON with stages") or diag($@);
        my ($rc, $out) = run($sidecar, '--redis', '127.0.0.1:1',
                             '--split', 'api', '--status',
                             'http://127.0.0.1:1/canary_status',
                             '--plan', $plan, '--once', '--dry-run');
        is($rc, 1, "$name: canary-sidecar --once --dry-run accepts it "
           . 'and holds without nginx (exit 1)') or diag($out);
        like($out, qr/not starting: no nginx answered for this split/,
             "$name: it got as far as its step") or diag($out);
    }
}

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

    # the exit code; minus the signal for a command killed by one
    my $rc = $? & 127 ? -($? & 127) : $? >> 8;

    return wantarray ? ($rc, $out) : $rc;
}


sub slurp {
    my ($file) = @_;

    open my $fh, '<', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}


sub dirname {
    my ($path) = @_;

    (my $d = $path) =~ s{/[^/]*$}{};
    return $d;
}


sub yaml {
    my ($file) = @_;

    my $y = eval { CPAN::Meta::YAML->read($file) };
    ok($y, "$file parses (CPAN::Meta::YAML)")
        or diag($@ || CPAN::Meta::YAML->errstr);

    return $y ? $y->[0] : {};
}


# starts nginx with a split of each kind, sends a request to each side and
# returns what /canary_status?format=prometheus exports
sub scrape {
    my $t = CanaryTest->new(name => 'scrape');
    my $port = $t->port('http');

    $t->write_conf(<<"EOF");
    canary_zone canary 1m;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 50;
        guard error_rate=50 min_requests=1000;
        override X-Canary always canary;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;
        location / { canary app; proxy_pass http://\$canary_upstream; }
        location = /canary_status { canary_status; }
    }
EOF
    $t->start;

    $t->get($port, '/', { 'X-Canary' => 'always' });
    $t->get($port, '/', { 'X-Tenant-Id' => $_ }) for 1 .. 10;

    my $text = $t->get($port, '/canary_status?format=prometheus')->{content};

    $t->stop;

    my %e = (names => {}, labels => {}, values => {});

    for my $line (split /\n/, $text) {
        next if $line =~ /^#/ || $line !~ /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s/;
        $e{names}{$1} = 1;

        my $labels = $2 // '';

        while ($labels =~ /(\w+)="((?:[^"\\]|\\.)*)"/g) {
            $e{labels}{$1} = 1;
            $e{values}{$1}{$2} = 1;
        }
    }

    return %e;
}


sub metrics_in {
    my ($expr) = @_;

    my $e = $expr;

    $e =~ s/"(?:[^"\\]|\\.)*"//g;
    $e =~ s/\{[^}]*\}//g;
    $e =~ s/\[[^\]]*\]//g;
    $e =~ s/\b(?:by|without|on|ignoring|group_left|group_right)\s*
             \([^)]*\)//gx;

    my %kw = map { $_ => 1 } qw(and or unless bool offset by without on
                                ignoring group_left group_right);

    return grep { !$kw{$_} }
           $e =~ /(?<![\w:.\$])([a-zA-Z_:][\w:]*)\b(?!\s*\()/g;
}


# metrics and labels of a PromQL expression that nginx does not export
sub unknown_in_promql {
    my ($expr, $recorded) = @_;

    my @bad;

    for my $m (metrics_in($expr)) {
        push @bad, "metric $m" unless $exported{names}{$m}
                                      || $recorded->{$m};
    }

    my @labels;

    while ($expr =~ /\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g) {
        push @labels, map { [$_, undef] } $1 =~ /(\w+)/g;
    }

    while ($expr =~ /\{([^}]*)\}/g) {
        my $m = $1;

        while ($m =~ /(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g) {
            push @labels, [$1, $2 eq '=' ? $3 : undef];
        }
    }

    for my $l (@labels) {
        my ($name, $value) = @$l;

        next if $target_labels{$name};

        if (!$exported{labels}{$name}) {
            push @bad, "label $name";

        } elsif (defined $value && $name ne 'split'
                 && !$exported{values}{$name}{$value})
        {
            push @bad, "$name=\"$value\"";
        }
    }

    return @bad;
}


# the sidecar's options name a split, a status location and a Redis of
# the nginx configuration, and the sidecar itself accepts them (exit 2 is
# "bad options or plan"; with no Redis to reach, a good command line holds
# and exits 1 after one step)
sub sidecar_accepts {
    my ($what, $args, $conf, $redis, $port) = @_;

    my %o;
    my @a = @$args;

    while (@a) {
        my $k = shift @a;
        next unless $k =~ /^--([\w-]+)$/;
        push @{$o{$1}}, (@a && $a[0] !~ /^--/) ? shift @a : 1;
    }

    my %splits = map { $_ => 1 } $conf =~ /^\s*canary_split\s+(\S+)\s*\{/mg;

    ok($splits{$o{split}[0] // ''},
       "$what: --split " . ($o{split}[0] // 'none')
       . " is a canary_split of the configuration");
    is($o{redis}[0], $redis, "$what: --redis is the canary_redis address");

    for my $url (@{$o{status} || []}) {
        my ($port_of, $path) = $url =~ m{^http://[^/:]+:(\d+)(/[^?]*)};
        ok($conf =~ /location\s+=\s*\Q$path\E\s*\{[^{}]*canary_status\s*;/,
           "$what: --status $path is a canary_status location");
        next unless $url =~ /127\.0\.0\.1/;
        is($port_of, $port, "$what: --status on the port nginx listens on");
    }

    SKIP: {
        my $sidecar = $ENV{CANARY_SIDECAR}
                      || "$CanaryTest::ROOT/build/canary-sidecar";
        skip "$sidecar is not built", 3 unless -x $sidecar;

        # the plan from this repository; Redis and nginx nowhere
        my @run;
        my @b = @$args;

        while (@b) {
            my $k = shift @b;
            my $v = (@b && $b[0] !~ /^--/) ? shift @b : undef;

            if ($k eq '--plan') {
                $v = "$dir/plan-default.json";
            } elsif ($k eq '--redis') {
                $v = '127.0.0.1:1';
            } elsif ($k eq '--status') {
                # each nginx its own (the sidecar refuses one twice)
                $v =~ s{//([^/]+)}{//127.0.0.1:1/$1};
            } elsif ($k eq '--receipts') {
                $v = '/dev/null';
            }

            push @run, $k, defined $v ? $v : ();
        }

        # exit 2 would be bad options or plan; 1 is "could not decide"
        # (no nginx answers, so it does not touch Redis): it accepted
        # everything and ran its step; a signal (a crash) or a sanitizer
        # report is a failure
        my ($rc, $out) = run($sidecar, @run, '--once', '--dry-run');
        is($rc, 1, "$what: canary-sidecar accepts its options and plan, "
           . 'then holds without nginx (exit 1)') or diag($out);
        my $held = qr/not starting: no nginx answered for this split/;
        like($out, qr/$held \(.*\); holding/,
             "$what: it got as far as its step");
        unlike($out, qr/Sanitizer|runtime error:/,
               "$what: no sanitizer report") or diag($out);
    }
}
