#!/usr/bin/perl

# Story: an operator's Prometheus and Grafana see what really happened.
# Real nginx with the module routes known traffic: stable healthy; a
# canary that fails one request in six with a 500 and answers another
# one in six after 50ms; a second split whose canary is down.  The scrape
# of /canary_status?format=prometheus passes "promtool check metrics"
# without a word, its histograms are well formed, and its counters are
# exactly the requests we sent.  Then promtool evaluates the shipped
# conf-examples/prometheus-rules.yml and every query of
# conf-examples/grafana-dashboard.json on exactly those samples (as if
# nginx had served that much traffic every minute): the recorded request
# rates, error ratios and p99 are the ones we caused, the canary alerts
# fire and the others do not, and no dashboard panel is empty.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempfile);
use JSON::PP;
use POSIX qw(floor);
use Test::More;
use CanaryTest;
use Traffic;

plan skip_all => 'promtool is not installed (Debian package prometheus)'
    unless -x '/usr/bin/promtool' || grep { -x "$_/promtool" }
                                          split /:/, $ENV{PATH} // '';

my $EXAMPLES = "$CanaryTest::ROOT/conf-examples";
my $MINUTES = 20;           # of made-up history for promtool
my $SLOW_MS = 50;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $st = $t->port('stable');
my $cn = $t->port('canary');
my $slow = $t->port('slow');
my $dead = $t->port('dead');    # nothing listens here

Traffic::slow_origin($t, $slow, $SLOW_MS, "canary\n");

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 4m;

    upstream st { server 127.0.0.1:$st; }
    upstream cn { server 127.0.0.1:$cn; }
    upstream dn { server 127.0.0.1:$dead max_fails=0; }

    canary_split app {
        stable st;
        canary cn;
        weight 50;
        override X-Canary always canary;
        override X-Canary never  stable;
        guard error_rate=90 min_requests=100000;
    }

    canary_split gone {
        stable st;
        canary dn;
        weight 0;
        override X-Canary always canary;
        override X-Canary never  stable;
    }

    server {
        listen 127.0.0.1:$st;
        location / { return 200 "stable\\n"; }
    }

    server {
        listen 127.0.0.1:$cn;
        location /fail { return 500 "canary failed\\n"; }
        location /slow { proxy_pass http://127.0.0.1:$slow; }
        location / { return 200 "canary\\n"; }
    }

    server {
        listen 127.0.0.1:$port;

        location / { canary app; proxy_pass http://\$canary_upstream; }
        location /gone/ { canary gone; proxy_pass http://\$canary_upstream; }
        location = /canary_status { canary_status; }
    }
EOF
$t->start;

# nginx logs the dead canary's refused connections
$t->allow_log(qr/connect\(\) failed \(111: Connection refused\)/);

my %sent = (
    app  => { stable => { '/' => 200 },
              canary => { '/' => 80, '/fail' => 20, '/slow' => 20 } },
    gone => { stable => { '/gone/' => 50 },
              canary => { '/gone/' => 10 } },
);

my @reqs;

for my $split (sort keys %sent) {
    for my $side (sort keys %{$sent{$split}}) {
        my $h = $side eq 'canary' ? 'always' : 'never';

        for my $path (sort keys %{$sent{$split}{$side}}) {
            push @reqs, map { { path => $path,
                                headers => ['X-Canary' => $h,
                                            'X-Tenant-Id' => "t$_"] } }
                            1 .. $sent{$split}{$side}{$path};
        }
    }
}

my $res = $t->request_many($port, \@reqs, clients => 2, batch => 10);
my %status;
$status{$_->{status}}++ for @$res;
is_deeply(\%status, { 200 => 350, 500 => 20, 502 => 10 },
          'nginx answered what the origins said: '
          . join(', ', map { "$_ x$status{$_}" } sort keys %status));

my $r = $t->get($port, '/canary_status?format=prometheus');
is($r->{status}, 200, 'the scrape answers');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4},
     'in the Prometheus text format');

my $text = $r->{content};
my ($fh, $scrape_file) = tempfile(DIR => $t->prefix, SUFFIX => '.prom');
print $fh $text;
close $fh;

my ($rc, $out) = run_promtool("check metrics < '$scrape_file'");
is($rc, 0, 'promtool check metrics exits 0');
is($out, '', 'and prints nothing: no lint problem') or diag($out);


# ---- the samples ------------------------------------------------------------

my @samples = parse_exposition($text);
my %by = map { (sample_key($_) => $_->{value}) } @samples;

sub v {
    my ($name, %l) = @_;
    return $by{sample_key({ name => $name, labels => \%l })};
}

for my $split (sort keys %sent) {
    for my $side (qw(stable canary)) {
        my $n = 0;
        $n += $_ for values %{$sent{$split}{$side}};

        my $fail = $split eq 'app' && $side eq 'canary'
                   ? $sent{app}{canary}{'/fail'} : 0;
        my $up = $split eq 'gone' && $side eq 'canary' ? $n : 0;

        my %l = (split => $split, variant => $side);

        is(v('canary_request_duration_seconds_count', %l), $n,
           "$split $side: every request counted ($n)");
        is(v('canary_requests_total', %l, code => '2xx'), $n - $fail - $up,
           "$split $side: 2xx");
        is(v('canary_requests_total', %l, code => '5xx'), $fail,
           "$split $side: 5xx from the origin");
        is(v('canary_upstream_errors_total', %l), $up,
           "$split $side: upstream errors, not 5xx");

        for my $h (qw(canary_request_duration_seconds
                      canary_upstream_response_seconds))
        {
            my @b = sort { $a->[0] <=> $b->[0] }
                    map { [le_num($_->{labels}{le}), $_->{value}] }
                    grep { $_->{name} eq "${h}_bucket"
                           && $_->{labels}{split} eq $split
                           && $_->{labels}{variant} eq $side } @samples;

            my $mono = !grep { $b[$_][1] < $b[$_ - 1][1] } 1 .. $#b;

            ok(@b > 10 && $b[-1][0] == 9**9**9 && $mono,
               "$split $side $h: cumulative buckets up to +Inf");
            is($b[-1][1], v("${h}_count", %l),
               "$split $side $h: +Inf bucket = _count");
        }
    }
}

cmp_ok(v('canary_request_duration_seconds_sum', split => 'app',
         variant => 'canary'), '>=', 20 * $SLOW_MS / 1000,
       'the slow canary requests are in the sum of request times');
is(v('canary_weight_percent', split => 'app'), 50, 'weight of app');
is(v('canary_guard_tripped', split => 'app'), 0, 'the guard held');


# ---- promtool evaluates the rules and the dashboard on these samples -------

# every counter grew by its scraped value each minute; gauges stayed
my %type = $text =~ /^# TYPE (\S+) (\S+)$/mg;
my @series;

for my $s (@samples) {
    my $family = $s->{name};
    $family =~ s/_(?:bucket|sum|count)$// unless $type{$family};

    my $counter = ($type{$family} // '') =~ /^(?:counter|histogram)$/;
    my %l = (%{$s->{labels}}, job => 'edge', instance => 'nginx-a:8080');

    push @series, {
        series => series_text($s->{name}, \%l),
        values => $counter ? "0+$s->{value}x$MINUTES"
                           : "$s->{value}+0x$MINUTES",
    };
}

my @expr_tests;
my $at = '10m';

# the recording rules: rates per second are the per-minute counts / 60
for my $split (sort keys %sent) {
    for my $side (qw(stable canary)) {
        my %l = (split => $split, variant => $side);
        my $n = v('canary_request_duration_seconds_count', %l);
        my $e = v('canary_requests_total', %l, code => '5xx')
                + v('canary_upstream_errors_total', %l);

        push @expr_tests,
            micro("split_variant:canary_requests:rate5m", \%l, rate($n)),
            micro("split_variant:canary_error_ratio:rate5m", \%l,
                  (rate(v('canary_requests_total', %l, code => '5xx'))
                   + rate(v('canary_upstream_errors_total', %l)))
                  / rate($n));

        note("$split $side: " . $n / 60 . " req/s, error ratio "
             . ($n ? $e / $n : 'NaN'));
    }
}

my %p99;

for my $side (qw(stable canary)) {
    my %l = (split => 'app', variant => $side);
    my @b = map { [le_num($_->{labels}{le}), rate($_->{value})] }
            grep { $_->{name} eq 'canary_request_duration_seconds_bucket'
                   && $_->{labels}{split} eq 'app'
                   && $_->{labels}{variant} eq $side } @samples;

    $p99{$side} = bucket_quantile(0.99, 1, @b);

    # a rank on a bucket's upper bound may round either way, in Go as here
    my $lo = bucket_quantile(0.99, 1 - 1e-9, @b) - 1e-9;
    my $hi = bucket_quantile(0.99, 1 + 1e-9, @b) + 1e-9;
    my $sel = join ',', map { "$_=\"$l{$_}\"" } sort keys %l;
    my $x = "split_variant:canary_request_duration_seconds:p99_5m{$sel}";

    push @expr_tests, {
        expr => sprintf('(%s >= bool %.12g) * (%s <= bool %.12g)',
                        $x, $lo, $x, $hi),
        eval_time => $at,
        exp_samples => [ { labels => series_text('', { job => 'edge', %l }),
                           value => 1 } ],
    };
}

cmp_ok($p99{canary}, '>', 0.040, "canary p99 $p99{canary}s: the slow "
       . "sixth of its requests");
cmp_ok($p99{stable} * 1.5, '<', $p99{canary}, "stable p99 $p99{stable}s: "
       . "well under the canary's");

# which alerts fire after 15 minutes of this
push @expr_tests, {
    expr => 'ALERTS{alertstate="firing"}',
    eval_time => '15m',
    exp_samples => [
        map { { labels => series_text('ALERTS', {
                    alertstate => 'firing', job => 'edge', %$_ }),
                value => 1 } }
        { alertname => 'CanaryErrorRateHigh', severity => 'critical',
          split => 'app', variant => 'canary' },
        { alertname => 'CanaryErrorRateHigh', severity => 'critical',
          split => 'gone', variant => 'canary' },
        { alertname => 'CanaryLatencyP99High', severity => 'warning',
          split => 'app' },
    ],
};

# every dashboard query has data for split app
my $dash = decode_json(slurp("$EXAMPLES/grafana-dashboard.json"));
my @queries;

for my $p (@{$dash->{panels}}) {
    for my $q (@{$p->{targets} || []}) {
        (my $e = $q->{expr}) =~ s/\$__rate_interval/5m/g;
        $e =~ s/\$job/edge/g;
        $e =~ s/\$split/app/g;
        $e =~ s/\$instance/.*/g;
        push @queries, "$p->{title} $q->{refId}";
        push @expr_tests, { expr => "absent($e)", eval_time => $at,
                            exp_samples => [] };
    }
}

my $tests = {
    rule_files => ["$EXAMPLES/prometheus-rules.yml"],
    evaluation_interval => '1m',
    tests => [ { interval => '1m', input_series => \@series,
                 promql_expr_test => \@expr_tests } ],
};

# JSON is YAML
my ($tfh, $test_file) = tempfile(DIR => $t->prefix, SUFFIX => '.yml');
print $tfh JSON::PP->new->canonical->pretty->encode($tests);
close $tfh;

($rc, $out) = run_promtool("test rules '$test_file'");
ok($rc == 0 && $out =~ /SUCCESS/,
   'promtool evaluates the recording rules to the rates, error ratios and '
   . 'p99 of the traffic we sent, fires exactly the canary alerts, and '
   . 'finds data for every one of the ' . scalar(@queries) . ' dashboard '
   . 'queries') or diag(substr($out, 0, 6000));

$t->stop;

done_testing;


# ---- helpers ---------------------------------------------------------------

sub run_promtool {
    my ($args) = @_;

    my $out = `promtool $args 2>&1`;

    return ($? >> 8, $out);
}


sub slurp {
    my ($file) = @_;

    open my $fh, '<', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}


sub parse_exposition {
    my ($text) = @_;

    my @s;

    for my $line (split /\n/, $text) {
        next if $line =~ /^#/ || $line =~ /^\s*$/;

        my ($name, $labels, $value) =
            $line =~ /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/
            or do { fail("unparsable line: $line"); next };

        my %l;

        while (($labels // '') =~ /(\w+)="((?:[^"\\]|\\.)*)"/g) {
            $l{$1} = $2;
        }

        push @s, { name => $name, labels => \%l, value => $value + 0 };
    }

    return @s;
}


sub sample_key {
    my ($s) = @_;

    return join ',', $s->{name},
                     map { "$_=$s->{labels}{$_}" } sort keys %{$s->{labels}};
}


sub series_text {
    my ($name, $l) = @_;

    return $name . '{' . join(',', map { "$_=\"$l->{$_}\"" } sort keys %$l)
           . '}';
}


sub le_num {
    my ($le) = @_;

    return $le eq '+Inf' ? 9**9**9 : $le + 0;
}


# rate(x[5m]) of a counter growing by $v a minute, sampled every minute:
# no extrapolation, so exactly the increase over five minutes / 300s
sub rate {
    my ($v) = @_;

    return (5 * $v) / 300;
}


# the test of a recorded series, in millionths (promtool compares floats
# exactly; rounding both sides keeps the test about the rule)
sub micro {
    my ($record, $labels, $value) = @_;

    my $sel = join ',', map { "$_=\"$labels->{$_}\"" } sort keys %$labels;

    return {
        expr => "round($record\{$sel} * 1000000)",
        eval_time => $at,
        exp_samples => [ {
            labels => series_text('', { job => 'edge', %$labels }),
            value => floor($value * 1000000 + 0.5),
        } ],
    };
}


# Prometheus' histogram_quantile on one series of cumulative buckets, the
# rank scaled by $nudge
sub bucket_quantile {
    my ($q, $nudge, @b) = @_;

    @b = sort { $a->[0] <=> $b->[0] } @b;

    my $total = $b[-1][1];
    my $rank = $q * $total * $nudge;
    my ($i) = grep { $b[$_][1] >= $rank } 0 .. $#b - 1;

    return $b[-2][0] unless defined $i;

    my ($start, $end, $count) = (0, $b[$i][0], $b[$i][1]);

    if ($i > 0) {
        $start = $b[$i - 1][0];
        $count -= $b[$i - 1][1];
        $rank -= $b[$i - 1][1];
    }

    return $start + ($end - $start) * ($rank / $count);
}
