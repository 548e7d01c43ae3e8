package Memory;

# 5. Memory: zone.used from /canary_status JSON with 1 split and with
# 1 + K splits (bytes per split), then before and after BENCH_PINS tenants
# are pinned with SADD (bytes per pinned tenant); the RSS of one worker
# without the module, with the module only loaded, and with it configured
# and routing, each after the same requests.

use strict;
use warnings;

use Time::HiRes qw(sleep time);

use Bench;


sub status {
    my ($port) = @_;

    my $r = Bench::http_get($port, '/canary_status?format=json', [], 5)
        or die "bench: no /canary_status on $port\n";

    return $r->{body};
}


sub zone_used {
    my ($port) = @_;

    my ($used) = status($port) =~ /"zone":\{[^}]*"used":(\d+)/
        or die "bench: no zone.used in /canary_status\n";

    return $used;
}


sub split_block {
    my ($name) = @_;

    return <<"EOF";
    canary_split $name {
        stable stable;
        canary canary;
        weight 20;
    }
EOF
}


sub zone_nginx {
    my ($cfg, $tmp, $tag, $nsplits, $redis) = @_;

    my $port = Bench::port();
    my $splits = join("\n", split_block('app'),
                      map { split_block(sprintf 'extra%03d', $_) }
                      1 .. $nsplits - 1);
    my $size_mb = 1 + int($nsplits / 4) + 1;

    my $ngx = Bench::nginx(
        name    => $tag,
        workers => 1,
        ports   => [$port],
        conf    => Bench::main_conf(
            dir     => "$tmp/$tag",
            modules => [$cfg->{module}],
            http    => Bench::template('memory-zone.conf',
                UPSTREAMS  => Bench::template('upstreams.conf',
                                  STABLE_PORT => $cfg->{origins}{stable},
                                  CANARY_PORT => $cfg->{origins}{canary}),
                ZONE_SIZE  => "${size_mb}m",
                REDIS_PORT => $redis->{port},
                SPLITS     => $splits,
                PORT       => $port)));

    $ngx->{port} = $port;
    $ngx->start;

    # settled: connected, first sync done
    my $deadline = time + 10;
    sleep 0.05 until status($port) =~ /"connected":true/ || time > $deadline;
    sleep 0.3;

    return $ngx;
}


sub drive {
    my ($cfg, $port, $n) = @_;

    my $s = Bench::connect_tcp($port) or die "bench: connect $port\n";
    my $buf = '';
    my $mix = $cfg->{mix};
    my $batch = 50;

    for (my $i = 0; $i < $n; $i += $batch) {
        my $req = '';
        $req .= Bench::http_request_text('/', $mix->[($i + $_) % @$mix])
            for 0 .. $batch - 1;
        syswrite($s, $req);
        for (1 .. $batch) {
            Bench::read_response($s, \$buf, 10)
                or die "bench: no response from $port\n";
        }
    }

    close $s;
}


sub rss {
    my ($cfg, $tmp, $tag, $template, $modules) = @_;

    my $port = Bench::port();
    my $ngx = Bench::nginx(
        name    => $tag,
        workers => 1,
        ports   => [$port],
        conf    => Bench::main_conf(
            dir     => "$tmp/$tag",
            modules => $modules,
            http    => Bench::template($template,
                UPSTREAMS => Bench::template('upstreams.conf',
                                 STABLE_PORT => $cfg->{origins}{stable},
                                 CANARY_PORT => $cfg->{origins}{canary}),
                PORT      => $port)));

    $ngx->start;
    drive($cfg, $port, 20000);
    sleep 0.3;

    my ($w) = $ngx->worker_pids;
    my $m = Bench::memory_kb($w);
    $m->{master} = Bench::memory_kb($ngx->pid)->{VmRSS};

    $ngx->stop;

    return $m;
}


sub run {
    my ($cfg, $tmp) = @_;

    my $k = $cfg->{splits};
    my $npins = $cfg->{pins};
    my %r;

    Bench::log_msg("memory: zone with 1 and %d splits, %d pinned tenants, "
                   . "worker RSS", 1 + $k, $npins);

    my $redis = Bench::redis_start('redis-memory');

    # bytes per split
    my $one = zone_nginx($cfg, $tmp, 'mem-1', 1, $redis);
    $r{used_1} = zone_used($one->{port});
    $one->stop;

    my $many = zone_nginx($cfg, $tmp, 'mem-k', 1 + $k, $redis);
    $r{used_k} = zone_used($many->{port});
    $r{splits} = $k;
    $r{per_split} = ($r{used_k} - $r{used_1}) / $k;
    $many->stop;

    # bytes per pinned tenant
    my $ngx = zone_nginx($cfg, $tmp, 'mem-pins', 1, $redis);
    my $port = $ngx->{port};

    $r{pins_before} = zone_used($port);

    my @tenants = map { sprintf 'tenant-%06d', $_ } 1 .. $npins;
    my $key_bytes = 0;
    $key_bytes += length for @tenants;

    for (my $i = 0; $i < @tenants; $i += 1000) {
        my $j = $i + 999 > $#tenants ? $#tenants : $i + 999;
        my ($rc, $out) = Bench::redis_cli($redis->{port}, 'SADD',
                                          'canary:app:pin:canary',
                                          @tenants[$i .. $j]);
        die "bench: SADD failed: $out\n" if $rc;
    }

    Bench::redis_cli($redis->{port}, 'PUBLISH', 'canary:app', 'pins');

    my $t0 = time;
    my $deadline = $t0 + 15;

    until (status($port) =~ /"pins":\{"stable":\d+,"canary":$npins\}/) {
        die "bench: the $npins pins never showed in /canary_status:\n"
            . status($port) . "\n" if time > $deadline;
        sleep 0.05;
    }

    $r{pins_applied_s} = time - $t0;

    # the sync frees a replaced table a little later: wait for steady state
    sleep 1.5;

    $r{pins_after} = zone_used($port);
    $r{pins} = $npins;
    $r{pin_key_bytes} = $key_bytes / $npins;
    $r{per_pin} = ($r{pins_after} - $r{pins_before}) / $npins;

    push @{$r{bad_log}}, $ngx->bad_log_lines;
    $ngx->stop;
    Bench::redis_stop($redis);

    # worker RSS after the same 20,000 requests: the run with the median
    # VmRSS of three, the three configurations interleaved
    my %runs;

    for my $i (1 .. 3) {
        push @{$runs{plain}}, rss($cfg, $tmp, "rss-plain-$i",
                                  'memory-rss-plain.conf', []);
        push @{$runs{loaded}}, rss($cfg, $tmp, "rss-loaded-$i",
                                   'memory-rss-plain.conf', [$cfg->{module}]);
        push @{$runs{module}}, rss($cfg, $tmp, "rss-module-$i",
                                   'memory-rss-module.conf',
                                   [$cfg->{module}]);
    }

    for my $k (keys %runs) {
        my @s = sort { $a->{VmRSS} <=> $b->{VmRSS} } @{$runs{$k}};
        $r{"rss_$k"} = $s[1];
    }

    Bench::log_msg("  zone: %.0f bytes per split, %.1f bytes per pinned "
                   . "tenant (%.0f-byte keys); worker RSS %d kB without the "
                   . "module, %d kB loaded, %d kB routing", $r{per_split},
                   $r{per_pin}, $r{pin_key_bytes}, $r{rss_plain}{VmRSS},
                   $r{rss_loaded}{VmRSS}, $r{rss_module}{VmRSS});

    $r{command_zone} = 'GET /canary_status?format=json (zone.used); '
                       . 'bench/memory-zone.conf';
    $r{command_pins} = "redis-cli SADD canary:app:pin:canary tenant-000001 "
                       . "... ($npins), PUBLISH canary:app pins";
    $r{command_rss} = 'VmRSS/RssAnon/RssFile/RssShmem of the worker '
                      . '(/proc/PID/status) after 20,000 requests, median '
                      . 'of 3 instances';

    return \%r;
}


1;
